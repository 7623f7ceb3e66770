"""Operating a sync: every log line of a sync names its client and run; each invocation publishes its metrics."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from local.stack.handler_loader import load_handler
from local.stack.lambda_context import LocalLambdaContext
from local.stack.sqs_poller import sqs_event
from tests.builders import a_client, nightly_message
from tests.conftest import LOG_LINES, TEMPLATE
from tests.sync_support import link_client
from xero_sync.catalogue import CATALOGUE
from xero_sync.engine import EngineHooks
from xero_sync.errors import SyncNotQueued
from xero_sync.models import Client, RunStatus, RunTrigger, SyncRun
from xero_sync.observability import metrics
from xero_sync.runs import begin_run, finish_run
from xero_sync.sync_requests import request_sync
from xero_sync.sync_worker import process_sync_message
from xero_sync.unlinking import unlink_client


def emf_documents(output: str) -> list[dict]:
    """The CloudWatch embedded-metric documents printed by Powertools."""
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def test_a_syncs_log_lines_name_its_client_and_run_and_its_metrics_are_published(aws, api, emu, capsys, monkeypatch):
    # Given a linked client whose first sync is queued, with some Xero trouble on the way (a retry, a 429)
    tenant = emu.create_org("Observed Ltd")
    client = link_client(api, emu, tenant, "practice-a")
    (queued,) = aws.receive_all("SyncQueue")
    emu.fault("500", tenantId=tenant, path="Invoices")
    emu.fault("429-minute", tenantId=tenant, path="Accounts", retryAfter=1)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    function = TEMPLATE.functions(aws.physical)["SyncClientFunction"]
    event = sqs_event([queued], aws.physical["SyncQueue"].attributes["Arn"], TEMPLATE.region)
    run_id = json.loads(queued["Body"])["runId"]
    metrics.clear_metrics()  # what earlier tests' invocations left unpublished (metrics are off for them)
    capsys.readouterr()
    first_line = len(LOG_LINES.lines)

    # When the worker's handler runs it
    response = load_handler(function)(event, LocalLambdaContext(function.logical_id, function.timeout))

    # Then it succeeded, and every line the service wrote meanwhile names the client and the run
    assert response == {"batchItemFailures": []}
    lines = [json.loads(line) for line in LOG_LINES.lines[first_line:] if line.startswith("{")]
    ours = [line for line in lines if line.get("service") == "xero-sync"]
    assert len(ours) >= 3  # at least the retry, the 429 and the run's end
    assert all((line.get("client_id"), line.get("run_id")) == (client.client_id, run_id) for line in ours), [
        line["message"] for line in ours if line.get("run_id") != run_id
    ]
    # And the invocation's metrics were published: records, calls, 429s, waits, the outcome and its duration
    (document,) = emf_documents(capsys.readouterr().out)
    names = {m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {
        "RecordsFetched",
        "RecordsImported",
        "XeroApiCalls",
        "XeroRateLimited",
        "RateLimitWaitSeconds",
        "SyncSucceeded",
        "SyncDurationSeconds",
    } <= names
    value = {name: sum(document[name]) for name in names}  # Powertools writes each metric's values as a list
    assert value["RecordsFetched"] == value["RecordsImported"] > 0  # a first sync inserts every record it reads
    assert value["XeroRateLimited"] == 1 and value["XeroApiCalls"] > len(CATALOGUE) and value["SyncSucceeded"] == 1


def counted(name: str) -> float:
    """How much of a metric this process has added since the last clear_metrics (Powertools holds them until its
    handler's end; metrics are off in tests, so nothing else takes them)."""
    return sum(metrics.metric_set.get(name, {}).get("Value", []))


def test_a_run_whose_worker_was_lost_counts_as_a_failed_sync_once_when_taken_over(aws):
    client = a_client("practice-a")
    crashed = nightly_message(client)
    assert begin_run(crashed) is not None
    client.update(actions=[Client.current_run_expires_at.set(datetime.now(UTC) - timedelta(minutes=5))])
    metrics.clear_metrics()
    assert begin_run(nightly_message(client)) is not None
    assert (counted("SyncFailed"), counted("SyncSucceeded")) == (1, 0)
    finish_run(crashed, RunStatus.SUCCEEDED)  # its worker's late end: the run had ended
    assert (counted("SyncFailed"), counted("SyncSucceeded")) == (1, 0)


def test_a_sync_now_the_queue_did_not_take_counts_as_a_failed_sync(aws, sqs_not_taking):
    client = a_client("practice-a")
    metrics.clear_metrics()
    with sqs_not_taking(), pytest.raises(SyncNotQueued):
        request_sync("practice-a", client.client_id, RunTrigger.MANUAL)
    assert (counted("SyncFailed"), counted("SyncSucceeded")) == (1, 0)


def test_a_sync_unlinked_under_its_worker_is_not_counted_again_when_the_worker_ends(aws, link):
    # Given a client's first sync, unlinked by the practice while its worker reads the first resource
    _tenant, client, message = link("Unlinked Midway Ltd")

    def unlink_once(_resource: str, done: list[bool] = []) -> None:  # noqa: B006 (the hook's own memory)
        if not done:
            done.append(True)
            unlink_client("practice-a", client.client_id)

    metrics.clear_metrics()
    # When the worker ends its invocation before its next heartbeat tells it (however the unlink's clean-up at Xero
    # leaves the rest of its reads)
    process_sync_message(message, hooks=EngineHooks(after_pass=unlink_once))
    # Then the run is the unlink's (failed, client_unlinked), not a failed sync, and the worker counts nothing more
    run = SyncRun.get(client.client_id, message.run_id)
    assert (run.status, run.error_code) == ("failed", "client_unlinked")
    assert (counted("SyncSucceeded"), counted("SyncFailed"), counted("SyncDurationSeconds")) == (0, 0, 0)
