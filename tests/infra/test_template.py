"""What cfn-lint does not check, asserted on template.yaml as aws-sam-translator hands it to CloudFormation."""

import json
import re

import pytest

from tests.conftest import TEMPLATE
from xero_sync.config import Settings

RESOURCES = TEMPLATE.resources
FUNCTIONS = TEMPLATE.of_type("AWS::Lambda::Function")
NAMED = TEMPLATE.named_resources()


def policy_statements(function_id: str) -> list[dict]:
    role_id = FUNCTIONS[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = RESOURCES[role_id]["Properties"].get("Policies", [])
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


def as_list(value):
    return value if isinstance(value, list) else [value]


def resolved(value) -> str:
    return json.dumps(TEMPLATE.resolve(value, NAMED))


def test_every_function_pins_runtime_and_architecture():
    assert FUNCTIONS
    for function_id, function in FUNCTIONS.items():
        properties = function["Properties"]
        assert (properties["Runtime"], properties["Architectures"]) == ("python3.13", ["arm64"]), function_id
        assert properties["TracingConfig"] == {"Mode": "Active"}, function_id
    (layer,) = TEMPLATE.of_type("AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_every_function_logs_to_its_own_group_with_retention():
    groups = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS.values()]
    assert len(set(groups)) == len(FUNCTIONS)
    for group in groups:
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
        assert "RetentionInDays" in RESOURCES[group]["Properties"]


def test_the_sync_queue_outlasts_six_sync_timeouts():
    for source in TEMPLATE.queue_event_sources():
        timeout = FUNCTIONS[source.function]["Properties"]["Timeout"]
        visibility = RESOURCES[source.queue]["Properties"]["VisibilityTimeout"]
        assert visibility >= 6 * timeout, f"{source.queue}: {visibility} s < 6 x {timeout} s"


def test_every_async_path_has_a_dead_letter_queue():
    for source in TEMPLATE.queue_event_sources():
        redrive = RESOURCES[source.queue]["Properties"]["RedrivePolicy"]
        assert RESOURCES[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
        assert source.report_batch_item_failures, "a failed record must not send the whole batch back"
        assert source.maximum_concurrency, "the fleet's pace against Xero's app-wide limit depends on it"
    invoke_configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in TEMPLATE.of_type("AWS::Lambda::EventInvokeConfig").values()
    }
    for schedule in TEMPLATE.of_type("AWS::Scheduler::Schedule").values():
        target = schedule["Properties"]["Target"]
        assert "DeadLetterConfig" in target, "a schedule that cannot invoke its target must leave a trace"
        function_id = target["Arn"]["Fn::GetAtt"][0]
        assert "OnFailure" in invoke_configs[function_id]["DestinationConfig"], f"{function_id} fails silently"


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_no_policy_grants_a_wildcard_table_secret_or_queue(function_id):
    for statement in policy_statements(function_id):
        actions = as_list(statement["Action"])
        resources = [resolved(r) for r in as_list(statement["Resource"])]
        if any(a.split(":")[0] in {"dynamodb", "secretsmanager", "sqs", "kms"} for a in actions):
            assert all(r != '"*"' for r in resources), f"{function_id}: {actions} on *"
            assert not any(a.endswith(":*") or a == "*" for a in actions), f"{function_id}: {actions}"
        if any(a.startswith("secretsmanager:") for a in actions):
            for resource in resources:
                assert "xero-sync-local/xero/" in resource, f"{function_id}: secrets outside the app's prefix"


def test_secret_and_key_use_is_limited_to_functions_that_handle_tokens():
    # sync_dispatch retries the Xero clean-up of clients unlinked while Xero was away; clients deletes a client's
    # token set when it purges the client.
    token_handlers = {"LinkFunction", "UnlinkFunction", "SyncClientFunction", "SyncDispatchFunction", "ClientsFunction"}
    for function_id in FUNCTIONS:
        actions = {a for s in policy_statements(function_id) for a in as_list(s["Action"])}
        touches_secrets = any(a.startswith(("secretsmanager:", "kms:")) for a in actions)
        assert touches_secrets == (function_id in token_handlers), function_id


def test_tables_are_on_demand_encrypted_and_recoverable():
    tables = TEMPLATE.of_type("AWS::DynamoDB::Table")
    assert len(tables) == 6
    for table_id, table in tables.items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", table_id
        assert properties["SSESpecification"] == {"SSEEnabled": True}, table_id
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, table_id
    assert tables["OAuthStatesTable"]["Properties"]["TimeToLiveSpecification"]["Enabled"] is True
    for kept in ("ClientsTable", "RecordsTable", "SyncRunsTable", "CheckpointsTable", "TokenSetsTable"):
        assert tables[kept]["DeletionPolicy"] == "Retain", f"{kept}: a stack deletion must not delete client data"


def test_every_route_but_the_xero_callback_needs_a_jwt():
    routes = TEMPLATE.routes()
    assert {(r.method, r.path) for r in routes if not r.authorized} == {("GET", "/xero/callback")}
    assert len(routes) == 9


def test_every_function_gets_every_setting_the_code_requires():
    required = {field.alias for field in Settings.model_fields.values() if field.is_required()}
    for function_id, function in FUNCTIONS.items():
        variables = set(function["Properties"]["Environment"]["Variables"])
        assert required <= variables, f"{function_id} lacks {sorted(required - variables)}"


def test_alarms_watch_the_dead_letter_queue_the_queue_age_and_sync_failures():
    alarms = TEMPLATE.of_type("AWS::CloudWatch::Alarm").values()
    watched = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms if "MetricName" in a["Properties"]
    }
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage") in watched
    # The failure rate: failed syncs as a share of those that ended, from the worker's two metrics
    (rate,) = [a["Properties"] for a in alarms if "Metrics" in a["Properties"]]
    metrics = {m["Id"]: m for m in rate["Metrics"]}
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in metrics.values() if "MetricStat" in m} == {
        "SyncFailed",
        "SyncSucceeded",
    }
    assert [m["Id"] for m in metrics.values() if m.get("ReturnData")] == ["failureRate"]
    assert "failed" in metrics["failureRate"]["Expression"] and rate["Threshold"] == 20
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"], "an alarm nobody hears"


def test_the_layer_ships_exactly_the_pinned_runtime_lock():
    lock = (TEMPLATE.code_dirs["CommonLayer"] / "requirements.txt").read_text()
    pins = [line.split("#")[0].strip() for line in lock.splitlines() if line.split("#")[0].strip()]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\[\],-]+==[\w.]+", pin) for pin in pins), pins
    names = {pin.split("==")[0].split("[")[0].lower() for pin in pins}
    assert {"aws-lambda-powertools", "pynamodb", "requests", "authlib", "pydantic", "boto3"} <= names


def test_the_published_openapi_has_exactly_the_templates_routes_each_behind_the_jwt_but_the_callback():
    from local.openapi import merged_openapi

    document = merged_openapi(TEMPLATE, TEMPLATE.functions(NAMED))
    served = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert served == {(r.method, r.path) for r in TEMPLATE.routes()}
    for route in TEMPLATE.routes():
        security = document["paths"][route.path][route.method.lower()]["security"]
        assert security == ([{"jwt": []}] if route.authorized else []), route
    assert "ClientOverview" in document["components"]["schemas"]
