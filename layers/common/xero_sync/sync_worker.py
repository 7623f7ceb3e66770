"""What the sync_client function does with one message: take the run, import, record the outcome.

The import itself (the sync engine) is not built yet: a run taken here is recorded as failed with the code
`engine_not_built`, so history shows the truth instead of a success that imported nothing.
"""

from xero_sync.models import RunStatus
from xero_sync.observability import logger, metrics
from xero_sync.runs import begin_run, finish_run
from xero_sync.schemas import SyncMessage


class SyncEngineNotBuilt(Exception):
    code = "engine_not_built"


def import_organisation(message: SyncMessage) -> None:
    raise SyncEngineNotBuilt("the Xero import (sync engine) is not built yet")


def process_sync_message(message: SyncMessage) -> RunStatus | None:
    """Runs the sync a message asks for; returns its final status, or None when the message was dropped."""
    logger.append_keys(client_id=message.client_id, run_id=message.run_id)
    begun = begin_run(message)
    if begun is None:
        return None
    try:
        import_organisation(message)
    except SyncEngineNotBuilt as error:
        finish_run(message, RunStatus.FAILED, error=(error.code, str(error)))
        metrics.add_metric(name="SyncFailed", unit="Count", value=1)
        return RunStatus.FAILED
    finish_run(message, RunStatus.SUCCEEDED)
    metrics.add_metric(name="SyncSucceeded", unit="Count", value=1)
    return RunStatus.SUCCEEDED
