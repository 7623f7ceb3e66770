"""The heartbeat of a running sync: it keeps the run's claim alive while its worker works (runs.py has the claim)."""

import contextlib
import threading
from collections.abc import Callable

from pynamodb.exceptions import UpdateError

from xero_sync.config import get_settings
from xero_sync.models import Client, RunStatus, SyncRun, condition_failed
from xero_sync.observability import logger
from xero_sync.runs import now_utc, worker_lease_until
from xero_sync.schemas import RunProgress, SyncMessage


class Heartbeat:
    """Keeps a running sync's claim alive while its worker works, and publishes the run's progress.

    Every RUN_HEARTBEAT_SECONDS it renews the claim (conditional: the client must still name this run as running)
    and writes `progress()` to the run. A worker that dies stops renewing, so its claim lapses within
    WORKER_LEASE_SECONDS and the client's next message takes over. When the renewal is refused (the client was
    unlinked or deleted, or another run took over after a stall), `on_lost` is called once so the work stops.
    """

    def __init__(
        self,
        message: SyncMessage,
        progress: Callable[[], RunProgress],
        on_lost: Callable[[], None],
        interval: float | None = None,
    ) -> None:
        self.message = message
        self.progress = progress
        self.on_lost = on_lost
        self.interval = interval or get_settings().run_heartbeat_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="run-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.beat():
                    self.lost = True
                    logger.warning("the run's claim was lost: stopping its work")
                    self.on_lost()
                    return
            except Exception:  # a failed renewal is retried at the next beat; the lease outlasts several
                logger.exception("heartbeat failed")

    def beat(self) -> bool:
        """One renewal and progress report; False when the client no longer names this run as running."""
        now = now_utc()
        client = Client(practice_id=self.message.practice_id, client_id=self.message.client_id)
        try:
            client.update(
                actions=[Client.current_run_expires_at.set(worker_lease_until(now))],
                condition=(Client.current_run_id == self.message.run_id)
                & (Client.current_run_status == RunStatus.RUNNING.value)
                & Client.deleting_since.does_not_exist(),
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        progress = self.progress().model_dump(mode="json", exclude_none=True)
        with contextlib.suppress(UpdateError):  # the run was closed meanwhile (unlinked, deleted)
            SyncRun(client_id=self.message.client_id, run_id=self.message.run_id).update(
                actions=[SyncRun.progress.set(progress)],
                condition=SyncRun.status == RunStatus.RUNNING.value,
            )
        return True
