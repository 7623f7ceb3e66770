"""What every table's model shares: the process's one DynamoDB connection, and its table name read from the settings
whenever PynamoDB asks (importing the models reads no settings). The models themselves are `models`."""

import contextlib
import threading
from collections.abc import Callable

from pynamodb.connection import Connection, TableConnection
from pynamodb.models import Model

from xero_sync.config import Settings, get_settings, on_forget_environment, per_environment


class TableName:
    """A Meta's `table_name`, read from the settings whenever PynamoDB asks (it does at each use, and reconnects the
    model when the name changed): importing the models reads no settings."""

    def __init__(self, setting: Callable[[Settings], str]) -> None:
        self.setting = setting

    def __get__(self, instance: object, owner: type | None = None) -> str:
        return self.setting(get_settings())


_CONNECTING = threading.Lock()  # the threads of one sync meet here at a cold start


@per_environment
def _connection() -> Connection:
    return Connection()


def shared_connection() -> Connection:
    """The process's one DynamoDB connection, for every table and transaction. PynamoDB gives each model its own,
    and each builds its botocore client from a botocore session of its own: ~10 MB of service model apiece, and the
    CPU to load it, at every cold start, once per table."""
    with _CONNECTING:
        return _connection()


class Table(Model):
    """A table's model, on the shared connection."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table = super()._get_connection()
        shared = shared_connection()
        if table.connection is not shared:
            with _CONNECTING:  # checked again: another thread may have just moved it (or another copy of the table)
                if table.connection is not shared:
                    with contextlib.suppress(ValueError):  # "already added", by another connection of this table
                        shared.add_meta_table(table.get_meta_table())
                    table.connection = shared
        return table


@on_forget_environment
def _forget_table_connections() -> None:
    """Each model keeps the connection it made (table name and endpoint included): made again at next use."""
    tables: list[type[Model]] = [Table]
    while tables:
        table = tables.pop()
        table._connection = None
        tables.extend(table.__subclasses__())
