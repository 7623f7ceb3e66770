"""Operating a sync: every log line of a sync names its client and run; each invocation publishes its metrics."""

import json

from local.stack.handler_loader import load_handler
from local.stack.lambda_context import LocalLambdaContext
from local.stack.sqs_poller import sqs_event
from tests.api import Api
from tests.conftest import LOG_LINES, TEMPLATE
from tests.sync_support import link_client
from xero_sync.catalogue import CATALOGUE
from xero_sync.observability import metrics


def emf_documents(output: str) -> list[dict]:
    """The CloudWatch embedded-metric documents printed by Powertools."""
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def test_a_syncs_log_lines_name_its_client_and_run_and_its_metrics_are_published(aws, emu, capsys, monkeypatch):
    # Given a linked client whose first sync is queued, with some Xero trouble on the way (a retry, a 429)
    tenant = emu.create_org("Observed Ltd")
    client = link_client(Api(aws.physical), emu, tenant, "practice-a")
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
