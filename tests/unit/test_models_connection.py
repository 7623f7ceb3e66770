"""Every table on the process's one DynamoDB connection, however many threads reach for it at once."""

import threading
import time

from pynamodb.connection import Connection

from xero_sync import models, tables
from xero_sync.config import forget_environment


def test_threads_that_first_use_a_table_at_once_all_get_the_shared_connection(monkeypatch):
    # Given a cold start (no connection made yet) and a connection slow to take a table's description, as a busy
    # machine makes it, so that threads overlap where the first use of a table is set up
    forget_environment()
    add_meta_table = Connection.add_meta_table

    def slow_add_meta_table(self, meta_table):
        time.sleep(0.01)
        add_meta_table(self, meta_table)

    monkeypatch.setattr(Connection, "add_meta_table", slow_add_meta_table)
    start = threading.Barrier(8)
    found: list[object] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        start.wait()
        try:
            found.append(models.XeroRecord._get_connection().connection)
        except BaseException as error:  # what a sync's resource thread would have died of
            errors.append(error)

    # When eight threads (a sync's resources) use the records table for the first time at once
    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then none fails, and all of them share the one connection
    assert errors == []
    assert len(found) == 8 and all(connection is tables.shared_connection() for connection in found)
