"""The sync engine end to end on the local stack with the Xero emulator: a medium organisation linked through the
API and the consent, its initial import run by the queue worker, then three rounds of changes made "in Xero", each
imported by Sync Now under injected faults (one round by a worker process killed mid-run and taken over). After
every sync the CLI's export (`python -m local export`) equals the emulator's ground truth, record for record."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.stack.offline_stack import OfflineStack
from local.stack.template import REPO_ROOT
from tests.e2e.helpers import Api, eventually, local_command
from tests.e2e.test_linking_e2e import finished_runs, link, overview
from tests.e2e.test_one_sync_at_a_time import CHILD_LEASE, sync_now, worker_process
from tests.sync_support import TIMEOUT_FAULT_HOLD
from tests.xero import Xero
from xero_sync.catalogue import CATALOGUE

ROUND_FAULTS: list[list[tuple[str, dict[str, Any]]]] = [
    [("500", {"path": "Invoices"}), ("malformed", {"path": "Contacts"}), ("429-minute", {"retryAfter": 1})],
    [
        ("503", {"path": "Journals"}),
        ("timeout", {"path": "Payments", "holdSeconds": TIMEOUT_FAULT_HOLD}),
        ("reset", {}),
    ],
    [("429-day", {"path": "BankTransactions", "retryAfter": 2}), ("500", {"count": 2})],
]


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("xero_minute_a_second")]


@pytest.fixture
def stack(xero_stack: OfflineStack) -> OfflineStack:
    return xero_stack


def exported(stack: OfflineStack, practice: str, client_id: str, out: Path) -> dict[str, dict[str, Any]]:
    """The CLI's export of the client: per resource, its records by Xero id."""
    result = subprocess.run(  # noqa: S603 - our own command line
        local_command(stack.state_dir, "export", client_id, "--out", str(out), "--practice", practice),
        cwd=REPO_ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, dict[str, Any]] = {}
    for spec in CATALOGUE:
        lines = (out / f"{spec.name}.jsonl").read_text().splitlines()
        found[spec.name] = {str(record[spec.id_field]): record for record in map(json.loads, lines)}
        assert len(found[spec.name]) == len(lines), f"{spec.name}: a record exported twice"
    return found


def ground_truth(xero: Xero, tenant: str) -> dict[str, dict[str, Any]]:
    truth: dict[str, dict[str, Any]] = {}
    for spec in CATALOGUE:
        records = xero.admin("GET", f"/orgs/{tenant}/records/{spec.name}").json()["records"]
        truth[spec.name] = {str(record[spec.id_field]): record for record in records}
    return truth


def assert_export_is_xero(stack: OfflineStack, xero: Xero, practice: str, client_id: str, tenant: str, out: Path):
    export, truth = exported(stack, practice, client_id, out), ground_truth(xero, tenant)
    wrong = {name: sorted(set(export[name]) ^ set(truth[name]))[:3] for name in truth if export[name] != truth[name]}
    assert not wrong, wrong
    counts = overview(Api(stack), practice, client_id)["recordCounts"]
    assert {name: n for name, n in counts.items() if n} == {name: len(r) for name, r in truth.items() if r}


def test_a_medium_organisation_stays_exactly_as_xero_through_changes_faults_and_a_killed_worker(
    stack: OfflineStack, api: Api, xero: Xero, practice: str, tmp_path: Path
) -> None:
    # Given a medium organisation linked through the API and Xero's consent
    tenant = xero.create_org(f"Medium {practice}", size="medium")
    (client_id,) = link(api, stack, xero, practice, [tenant])["clientIds"]
    # When the worker runs the link's initial sync, then the export equals Xero
    (initial,) = finished_runs(api, practice, client_id, 1)
    assert initial["status"] == "succeeded", initial
    assert_export_is_xero(stack, xero, practice, client_id, tenant, tmp_path / "initial")

    for round_, faults in enumerate(ROUND_FAULTS):
        # When users change things in Xero, and Xero misbehaves along the way
        xero.admin("POST", f"/orgs/{tenant}/changes", json={"count": 40, "seed": f"e2e-{round_}"})
        for kind, extra in faults:
            xero.admin(
                "POST", "/faults", json={"kind": kind, "count": extra.pop("count", 1), "tenantId": tenant, **extra}
            )
        if round_ == 2:
            # ... and the worker that takes the sync is killed in the middle of it, then the client is taken over
            with stack.worker_for("SyncQueue").paused():
                killed = sync_now(api, practice, client_id)
                child = worker_process(stack, "--kill-at-io", "60", env=CHILD_LEASE)
                assert child.wait(timeout=120) == -9
                eventually(lambda: overview(api, practice, client_id)["currentRun"] is None, timeout=30)
            taken_over = sync_now(api, practice, client_id)
            assert taken_over["runId"] != killed["runId"]
        else:
            sync_now(api, practice, client_id)
        # Then the sync succeeds, and the export equals Xero again
        latest = finished_runs(api, practice, client_id, 2 + round_ + (1 if round_ == 2 else 0))[0]
        assert (latest["status"], latest["errorMessage"]) == ("succeeded", None), latest
        assert_export_is_xero(stack, xero, practice, client_id, tenant, tmp_path / f"round-{round_}")
