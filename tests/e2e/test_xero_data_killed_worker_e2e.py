"""The data API after workers killed mid-run (issue 20), on the local stack the chaos driver uses (a message whose
worker died is back on the queue in seconds): an organisation linked and synced, then three rounds of changes in
Xero, each imported by a Sync Now whose worker process is SIGKILLed part-way (at a different network send each
round). The stack's own worker takes the message back once the dead worker's lease lapses and resumes the same run
from the checkpoints; then every resource, paged through GET /clients/{id}/xero/{resource} to its end, equals the
emulator's ground truth."""

import pytest

from local.chaos.worker_process import KILLED_EXIT
from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api
from tests.e2e.test_linking_e2e import a_synced_client, finished_runs, overview
from tests.e2e.test_one_sync_at_a_time import CHILD_LEASE, sync_now, worker_process
from tests.e2e.test_xero_data_e2e import (
    ROUNDS_ORG_SEED,
    assert_reads_as_xero,
    assert_the_rounds_made_every_kind,
    changes_in_xero,
)
from tests.xero import Xero

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("xero_minute_a_second")]
# The network send (DynamoDB, SQS, Secrets Manager, Xero) before which each round's worker is killed: early, middle
# and late in a tiny organisation's Sync Now, each after some resources were imported and before all of them were.
KILL_AT_SEND = (170, 240, 310)
KILLED_ROUND_SEEDS = ("killed-round-1", "killed-round-2", "killed-round-3")
# The killed worker's message is back this long after it was taken (the stack's queue keeps it 20 s): the kill comes
# about 2 s after the take, and the dead worker's lease (CHILD_LEASE) must have lapsed when the message is back, or
# the stack's worker drops it as a duplicate (in AWS the queue's 5400 s outlast the lease). 8 s: the kill and a margin.
KILLED_MESSAGE_BACK_AFTER = int(float(CHILD_LEASE["WORKER_LEASE_SECONDS"])) + 8


@pytest.fixture
def stack(chaos_stack: OfflineStack) -> OfflineStack:
    return chaos_stack


def test_after_rounds_of_changes_each_synced_by_a_worker_killed_mid_run_every_resource_reads_as_xero_shows_it(
    api: Api, stack: OfflineStack, xero: Xero, practice: str
) -> None:
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Killed Rounds Ltd", seed=ROUNDS_ORG_SEED)
    made: set[str] = set()
    for round_number, (seed, kill_at) in enumerate(zip(KILLED_ROUND_SEEDS, KILL_AT_SEND, strict=True), start=1):
        # When users change the organisation in Xero, and the practice presses Sync Now
        made |= changes_in_xero(xero, tenant, seed)
        imported = overview(api, practice, client_id)["lastImportedAt"]
        with stack.worker_for("SyncQueue").paused():
            accepted = sync_now(api, practice, client_id)
            # And the worker that takes it (a process of its own) is killed part-way through
            child = worker_process(
                stack,
                *("--kill-at-io", str(kill_at), "--exit-when-idle", "10"),
                *("--visibility-timeout", str(KILLED_MESSAGE_BACK_AFTER)),
                env=CHILD_LEASE,
            )
            assert child.wait(timeout=120) == KILLED_EXIT, child.stderr.read() if child.stderr else ""
            at_kill = overview(api, practice, client_id)
        assert (at_kill["currentRun"]["runId"], at_kill["currentRun"]["status"]) == (accepted["runId"], "running")
        done = {name for name, when in at_kill["lastImportedAt"].items() if when != imported.get(name)}
        assert 0 < len(done) < len(imported), f"round {round_number}: not killed mid-run ({sorted(done)})"

        # Then the stack's worker takes the run over once the dead worker's lease lapses, and finishes it
        latest, *_ = finished_runs(api, practice, client_id, round_number + 1)
        assert (latest["runId"], latest["status"]) == (accepted["runId"], "succeeded"), latest
        # From the checkpoints: what the killed worker had imported was not imported again
        after = overview(api, practice, client_id)["lastImportedAt"]
        assert {name: after[name] for name in done} == {name: at_kill["lastImportedAt"][name] for name in done}
        # And every resource, paged to its end, is what Xero shows now
        assert_reads_as_xero(api, xero, practice, client_id, tenant, f"round {round_number}")
    # And the rounds renamed and created contacts, removed groups, and voided or deleted documents
    assert_the_rounds_made_every_kind(made)
