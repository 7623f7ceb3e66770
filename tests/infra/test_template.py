"""What cfn-lint does not check, asserted on template.yaml as aws-sam-translator hands it to CloudFormation."""

import fnmatch
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


def test_every_function_is_traced_without_its_responses_or_errors():
    # Powertools' Tracer would otherwise put each traced method's return value (token sets, client data) and each
    # exception's text into X-Ray metadata, which neither the log guard nor IAM on the data covers.
    for function_id, function in FUNCTIONS.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, function_id
        assert variables.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE") == "false", function_id
        assert variables.get("POWERTOOLS_TRACER_CAPTURE_ERROR") == "false", function_id


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


# sync_dispatch retries the Xero clean-up of clients unlinked while Xero was away; purge deletes a deleted client's
# token set. The read API (clients) touches neither.
TOKEN_HANDLERS = {"LinkFunction", "UnlinkFunction", "SyncClientFunction", "SyncDispatchFunction", "PurgeFunction"}
# Every use of the key; CreateGrant too, a way to grant oneself the rest.
KEY_USE = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:CreateGrant",
)


def test_secret_and_key_use_is_limited_to_functions_that_handle_tokens():
    for function_id in FUNCTIONS:
        actions = {a for s in policy_statements(function_id) for a in as_list(s["Action"])}
        touches_secrets = any(a.startswith(("secretsmanager:", "kms:")) for a in actions)
        assert touches_secrets == (function_id in TOKEN_HANDLERS), function_id


def test_the_token_key_is_administered_by_the_account_and_used_only_by_the_token_handlers_via_secrets_manager():
    (key,) = TEMPLATE.of_type("AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    root = f"arn:aws:iam::{TEMPLATE.parameter_values['AWS::AccountId']}:root"
    roles = {FUNCTIONS[f]["Properties"]["Role"]["Fn::GetAtt"][0]: f for f in FUNCTIONS}
    users: set[str] = set()
    for statement in statements:
        principals = as_list(statement["Principal"]["AWS"])
        actions = as_list(statement["Action"])
        if [resolved(p) for p in principals] == [json.dumps(root)]:
            # The account administers it: no action of its patterns is a use of the key.
            assert not [u for u in KEY_USE if any(fnmatch.fnmatchcase(u, a) for a in actions)], actions
            assert "kms:*" not in actions and "*" not in actions
            continue
        # Anyone else: a role of this template, using it only through Secrets Manager in this account.
        users |= {roles[p["Fn::GetAtt"][0]] for p in principals}
        assert set(actions) <= {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"}, actions
        assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(actions)
        condition = TEMPLATE.resolve(statement["Condition"], NAMED)
        assert condition == {
            "StringEquals": {
                "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
                "kms:CallerAccount": TEMPLATE.parameter_values["AWS::AccountId"],
            }
        }
    assert users == TOKEN_HANDLERS
    # Each token handler's own statement names the key by its alias (no cycle with the key policy), via the service.
    (alias,) = TEMPLATE.of_type("AWS::KMS::Alias").values()
    alias_name = TEMPLATE.resolve(alias["Properties"]["AliasName"], NAMED)
    for function_id in TOKEN_HANDLERS:
        for statement in policy_statements(function_id):
            if any(a.startswith("kms:") for a in as_list(statement["Action"])):
                condition = TEMPLATE.resolve(statement["Condition"], NAMED)
                assert condition["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": alias_name}, function_id
                assert condition["StringEquals"] == {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    # No other function's role mentions KMS at all.
    for function_id in set(FUNCTIONS) - TOKEN_HANDLERS:
        role = RESOURCES[FUNCTIONS[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert "kms" not in json.dumps(role).lower(), function_id
    # A secret that CloudFormation creates and an operator sets cannot be on this key (they may not use it).
    for secret_id, secret in TEMPLATE.of_type("AWS::SecretsManager::Secret").items():
        assert secret["Properties"].get("KmsKeyId") != {"Ref": "TokenKey"}, secret_id


def test_the_data_api_only_reads():
    # Every practice's callers reach it with any client id and resource: it can neither write nor delete anything.
    routes = {(r.method, r.path) for r in TEMPLATE.routes() if r.function == "XeroDataFunction"}
    assert routes == {
        ("GET", "/clients/{clientId}/xero"),
        ("GET", "/clients/{clientId}/xero/{resource}"),
        ("GET", "/clients/{clientId}/xero/{resource}/{xeroId}"),
    }
    actions = {a for s in policy_statements("XeroDataFunction") for a in as_list(s["Action"])}
    assert actions == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}


def test_the_purge_queue_feeds_the_purge_function_alone_and_the_read_api_deletes_nothing():
    # The read API's role is the one most exposed (four routes, every practice's callers): no table-wide deletes,
    # no token secrets, no key; the purge that needs them is a function of its own behind the queue.
    consumers = {source.queue: source.function for source in TEMPLATE.queue_event_sources()}
    assert consumers["PurgeQueue"] == "PurgeFunction"
    (purge,) = [s for s in TEMPLATE.queue_event_sources() if s.function == "PurgeFunction"]
    assert (purge.batch_size, purge.maximum_concurrency) == (1, 5)
    assert {r.function for r in TEMPLATE.routes()} >= {"ClientsFunction"}
    assert "PurgeFunction" not in {r.function for r in TEMPLATE.routes()}
    actions = {a for s in policy_statements("ClientsFunction") for a in as_list(s["Action"])}
    assert not actions & {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}, actions
    assert not [a for a in actions if a.startswith(("secretsmanager:", "kms:"))], actions


def test_tables_are_on_demand_encrypted_and_recoverable():
    tables = TEMPLATE.of_type("AWS::DynamoDB::Table")
    assert len(tables) == 8
    for table_id, table in tables.items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", table_id
        assert properties["SSESpecification"] == {"SSEEnabled": True}, table_id
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, table_id
    ttl = {"AttributeName": "expires_at", "Enabled": True}
    for expiring in ("OAuthStatesTable", "RateLimitsTable", "XeroConnectionsTable"):
        assert tables[expiring]["Properties"]["TimeToLiveSpecification"] == ttl, expiring
    kept_tables = ("Clients", "Records", "SyncRuns", "Checkpoints", "TokenSets", "XeroConnections")
    for kept in (f"{name}Table" for name in kept_tables):
        assert tables[kept]["DeletionPolicy"] == "Retain", f"{kept}: a stack deletion must not delete client data"


def test_the_rate_limits_table_counts_one_practice_window_per_item():
    from xero_sync.models import RequestWindow

    table = TEMPLATE.of_type("AWS::DynamoDB::Table")["RateLimitsTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "window_key", "KeyType": "HASH"}]
    assert RequestWindow.expires_at.attr_name == table["TimeToLiveSpecification"]["AttributeName"]
    parameters = TEMPLATE.source["Parameters"]
    defaults = {name: parameters[name]["Default"] for name in ("PracticeRequestLimit", "PracticeRequestWindowSeconds")}
    assert defaults == {"PracticeRequestLimit": 60, "PracticeRequestWindowSeconds": 60}
    assert parameters["FullSyncPeriodSeconds"]["Default"] == 86400


def test_only_the_functions_serving_mutating_routes_may_count_requests():
    mutating = {r.function for r in TEMPLATE.routes() if r.method in {"POST", "DELETE"} and r.authorized}
    counting = {
        function_id
        for function_id in FUNCTIONS
        for statement in policy_statements(function_id)
        if "RateLimitsTable" in resolved(statement["Resource"])
    }
    assert counting == mutating == {"LinkFunction", "UnlinkFunction", "SyncNowFunction", "ClientsFunction"}
    # The stage's throttling stays: it bounds every route, the limit per practice only the mutating ones.
    stage_throttling = TEMPLATE.source["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert stage_throttling == {"ThrottlingBurstLimit": 50, "ThrottlingRateLimit": 25}


def test_every_route_needs_a_jwt():
    # Xero sends the browser to the front end's callback page, which completes the link with the user's JWT: no
    # route links anything for a caller the authorizer has not verified.
    routes = TEMPLATE.routes()
    assert [(r.method, r.path) for r in routes if not r.authorized] == []
    assert ("POST", "/xero/link-completions") in {(r.method, r.path) for r in routes}
    assert len(routes) == 12


def test_the_access_log_says_who_from_where_what_and_how_it_ended_and_never_the_query_or_body():
    from local.stack.template import Template

    entry = json.loads(TEMPLATE.access_log_format())
    assert entry == {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "practice": "$context.authorizer.claims.practice_id",
        "sub": "$context.authorizer.claims.sub",
        "sourceIp": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "error": "$context.error.message",
        "authorizerError": "$context.authorizer.error",
        "integrationError": "$context.integrationErrorMessage",
    }
    # The practice is whichever claim the stack is told names it.
    renamed = Template(parameters={"PracticeClaim": "custom:practice"}).access_log_format()
    assert json.loads(renamed)["practice"] == "$context.authorizer.claims.custom:practice"


def test_browsers_may_call_the_api_from_the_front_ends_origin_only_without_credentials():
    from local.stack.template import Template

    cors = TEMPLATE.cors_configuration()
    assert cors is not None
    assert cors["allowOrigins"] == [TEMPLATE.parameter_values["FrontendOrigin"]]
    assert not cors.get("allowCredentials", False)
    assert {"authorization", "content-type"} <= {h.lower() for h in cors["allowHeaders"]}
    assert set(cors["allowMethods"]) == {"GET", "POST", "DELETE"}
    assert [h.lower() for h in cors["exposeHeaders"]] == ["retry-after"]
    assert "*" not in json.dumps(cors)
    # The origin is the deployment's parameter, and nothing but an origin is accepted for it.
    assert Template(parameters={"FrontendOrigin": "https://console.example.com"}).cors_configuration() == {
        **cors,
        "allowOrigins": ["https://console.example.com"],
    }
    pattern = TEMPLATE.source["Parameters"]["FrontendOrigin"]["AllowedPattern"]
    for origin in ("https://console.example.com", "http://127.0.0.1:3000"):
        assert re.fullmatch(pattern, origin), origin
    for not_an_origin in ("*", "https://*.example.com", "https://console.example.com/", "console.example.com"):
        assert not re.fullmatch(pattern, not_an_origin), not_an_origin


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
    # Each requirement is `name==version \` followed by its `--hash=sha256:...` lines (tests/unit/test_locks.py).
    lines = [line.split("#")[0].strip().rstrip("\\").strip() for line in lock.splitlines()]
    pins = [line for line in lines if line and not line.startswith("--hash=")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\[\],-]+==[\w.]+", pin) for pin in pins), pins
    names = {pin.split("==")[0].split("[")[0].lower() for pin in pins}
    assert {"aws-lambda-powertools", "pynamodb", "requests", "authlib", "pydantic", "boto3"} <= names


def test_the_published_openapi_has_exactly_the_templates_routes_each_behind_the_jwt_but_the_callback():
    from local.stack.openapi_document import merged_openapi

    document = merged_openapi(TEMPLATE, TEMPLATE.functions(NAMED))
    served = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert served == {(r.method, r.path) for r in TEMPLATE.routes()}
    for route in TEMPLATE.routes():
        security = document["paths"][route.path][route.method.lower()]["security"]
        assert security == ([{"jwt": []}] if route.authorized else []), route
    assert "ClientOverview" in document["components"]["schemas"]


def test_every_mutating_route_documents_the_429_of_its_limit_with_retry_after():
    from local.stack.openapi_document import merged_openapi

    document = merged_openapi(TEMPLATE, TEMPLATE.functions(NAMED))
    for route in TEMPLATE.routes():
        responses = document["paths"][route.path][route.method.lower()]["responses"]
        limited = route.authorized and route.method in {"POST", "DELETE"}
        assert ("429" in responses) == limited, route
        if limited:
            assert responses["429"]["headers"]["Retry-After"]["required"] is True, route
            assert "rate_limited" in responses["429"]["description"], route


# --- least privilege ------------------------------------------------------------------------------------------------
# Each function's inline policy, exactly: action -> resources (logical names; `Table/index/name` for an index,
# `token-sets/*` for the token-set secrets). Derived by reading each function's code path and reviewed by hand:
# PynamoDB's get/save/update/delete are GetItem/PutItem/UpdateItem/DeleteItem, query is Query, batch_get and
# batch_write are BatchGetItem/BatchWriteItem (saves and deletes alike), and a TransactWrite needs the action of each
# of its parts (sync_requests.request_sync, runs.begin_run, finish_run, suspend_run: UpdateItem on Clients, PutItem
# or UpdateItem on SyncRuns; a link: PutItem or UpdateItem on Clients, UpdateItem on XeroConnections; a clean-up's
# leaving: ConditionCheckItem on Clients, UpdateItem on XeroConnections). Secrets Manager encrypts every secret with
# TokenKey: creating or writing one needs kms:GenerateDataKey, reading one kms:Decrypt (kms:Encrypt is never used).
# Every token-handling path reads the Xero app's credentials (XeroAppSecret). Whatever the functions call during the
# whole suite is checked against these policies as it happens (tests/aws_calls.py, wired in tests/conftest.py).
SECRETS_KMS = {"kms:Decrypt": {"TokenKey"}, "kms:GenerateDataKey": {"TokenKey"}}
APP_CREDENTIALS = {"secretsmanager:GetSecretValue": {"XeroAppSecret"}}
# Refreshing a token set (tokens.TokenStore.fresh): its ref and lease, its secret read and rewritten.
TOKEN_REFRESH = {"dynamodb:GetItem": {"TokenSetsTable"}, "dynamodb:UpdateItem": {"TokenSetsTable"}}


def merged(*parts: dict[str, set[str]]) -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for part in parts:
        for action, resources in part.items():
            table.setdefault(action, set()).update(resources)
    return table


# Removing a Xero connection once no client of any practice uses it (connections.remove_connection_unless_used): the
# clients-by-connection index for the clients linked before XeroConnections existed, then its users item claimed,
# read when the claim is refused, and marked removed.
CONNECTION_REMOVAL = {
    "dynamodb:Query": {"ClientsTable/index/clients-by-connection"},
    "dynamodb:GetItem": {"ClientsTable", "XeroConnectionsTable"},
    "dynamodb:UpdateItem": {"XeroConnectionsTable"},
}
# The Xero clean-up of an unlinked or deleted client (unlinking.clean_up_remote): the client leaves its connection's
# users (a transaction conditional on the client), refresh, the connection's removal, drop the tenant from the token
# set, delete it (secret and ref) once no client uses it, clear the client's connection.
REMOTE_CLEANUP = merged(
    CONNECTION_REMOVAL,
    {
        "dynamodb:ConditionCheckItem": {"ClientsTable"},
        "dynamodb:GetItem": {"ClientsTable", "TokenSetsTable"},
        "dynamodb:UpdateItem": {"ClientsTable", "TokenSetsTable"},
        "dynamodb:DeleteItem": {"TokenSetsTable"},
        "secretsmanager:GetSecretValue": {"token-sets/*", "XeroAppSecret"},
        "secretsmanager:PutSecretValue": {"token-sets/*"},
        "secretsmanager:DeleteSecret": {"token-sets/*"},
    },
    SECRETS_KMS,
)

# The limit per practice on every mutating route (limits.take_request): one conditional UpdateItem, nothing else.
PRACTICE_LIMIT = {"dynamodb:UpdateItem": {"RateLimitsTable"}}


# The run and link events (xero_sync.events) go to the stack's own bus, and only from the functions that end runs or
# change links.
PUBLISH = {"events:PutEvents": {"EventBus"}}


LEAST_PRIVILEGE: dict[str, dict[str, set[str]]] = {
    # start_link (state put, relink target read), complete_link (state read + conditional delete, client
    # create/relink in a transaction with its joining the connection's users, token set created, an older unused one
    # deleted, the link's sync queued, a connection a refused relink made removed if no client uses it).
    "LinkFunction": merged(
        {
            "dynamodb:GetItem": {"ClientsTable", "OAuthStatesTable", "TokenSetsTable", "SyncRunsTable"},
            "dynamodb:PutItem": {"ClientsTable", "OAuthStatesTable", "TokenSetsTable", "SyncRunsTable"},
            "dynamodb:UpdateItem": {"ClientsTable", "TokenSetsTable", "SyncRunsTable"},
            "dynamodb:DeleteItem": {"OAuthStatesTable", "TokenSetsTable"},
        },
        CONNECTION_REMOVAL,
        {
            "sqs:SendMessage": {"SyncQueue"},
            "secretsmanager:CreateSecret": {"token-sets/*"},
            "secretsmanager:DeleteSecret": {"token-sets/*"},
        },
        PRACTICE_LIMIT,
        APP_CREDENTIALS,
        SECRETS_KMS,
        PUBLISH,
    ),
    # unlink_client: the client marked, its active run closed (and read back for its event), then the remote
    # clean-up.
    "UnlinkFunction": merged(
        {"dynamodb:GetItem": {"SyncRunsTable"}, "dynamodb:UpdateItem": {"SyncRunsTable"}},
        PRACTICE_LIMIT,
        REMOTE_CLEANUP,
        PUBLISH,
    ),
    # Sync Now: request_sync claims the run on the client and queues it; a run it cannot queue is closed and read
    # back for its event. No token set, no index.
    "SyncNowFunction": merged(
        {
            "dynamodb:GetItem": {"ClientsTable", "SyncRunsTable"},
            "dynamodb:PutItem": {"SyncRunsTable"},
            "dynamodb:UpdateItem": {"ClientsTable", "SyncRunsTable"},
            "sqs:SendMessage": {"SyncQueue"},
        },
        PRACTICE_LIMIT,
        PUBLISH,
    ),
    # The nightly fan-out (clients-by-link-state), an operator's dispatch by id (client-id, then request_sync as
    # Sync Now does), the retried clean-ups (pending-cleanups + REMOTE_CLEANUP), stalled purges (queued again) and
    # token sets no client names (a scan of TokenSets, their clients read in batches, then deleted as the clean-up
    # does); a failed async invocation goes to its destination (SAM's).
    "SyncDispatchFunction": merged(
        {
            "dynamodb:Query": {
                "ClientsTable/index/clients-by-link-state",
                "ClientsTable/index/pending-cleanups",
                "ClientsTable/index/client-id",
            },
            "dynamodb:Scan": {"TokenSetsTable"},
            "dynamodb:BatchGetItem": {"ClientsTable"},
            "dynamodb:GetItem": {"SyncRunsTable"},
            "dynamodb:PutItem": {"SyncRunsTable"},
            "dynamodb:UpdateItem": {"SyncRunsTable"},
            "sqs:SendMessage": {"SyncQueue", "PurgeQueue", "AsyncFailureQueue"},
        },
        REMOTE_CLEANUP,
        PUBLISH,
    ),
    # begin_run / finish_run / suspend_run, the engine's checkpoints (all of a client's in one Query as a run begins)
    # and records, the token refresh, continuations, marking a refused token set's clients needs_relink.
    "SyncClientFunction": merged(
        {
            "dynamodb:GetItem": {"ClientsTable", "SyncRunsTable", "CheckpointsTable"},
            "dynamodb:PutItem": {"SyncRunsTable", "CheckpointsTable"},
            "dynamodb:UpdateItem": {"ClientsTable", "SyncRunsTable", "CheckpointsTable"},
            "dynamodb:Query": {"CheckpointsTable", "RecordsTable"},
            "dynamodb:BatchGetItem": {"RecordsTable"},
            "dynamodb:BatchWriteItem": {"RecordsTable"},
            "sqs:SendMessage": {"SyncQueue"},
            "secretsmanager:GetSecretValue": {"token-sets/*"},
            "secretsmanager:PutSecretValue": {"token-sets/*"},
        },
        TOKEN_REFRESH,
        APP_CREDENTIALS,
        SECRETS_KMS,
        PUBLISH,
    ),
    # The client API: list (query), overview (the client, its current run's progress, the record counts kept beside
    # the checkpoints), history; DELETE marks the client (UpdateItem), closes its active run (finish_run: UpdateItem
    # on SyncRuns and Clients) and queues the purge. No item deletes and no secrets: those are the purge's.
    "ClientsFunction": merged(
        {
            "dynamodb:GetItem": {"ClientsTable", "SyncRunsTable"},
            "dynamodb:Query": {"ClientsTable", "SyncRunsTable", "CheckpointsTable"},
            "dynamodb:UpdateItem": {"ClientsTable", "SyncRunsTable"},
            "sqs:SendMessage": {"PurgeQueue"},
        },
        PRACTICE_LIMIT,
        PUBLISH,
    ),
    # The data API: the caller's client (load_client), the client's checkpoints and counts (one Query), pages of
    # records (Query) and records by id and the contacts a page names (BatchGetItem). Reads only.
    "XeroDataFunction": {
        "dynamodb:GetItem": {"ClientsTable"},
        "dynamodb:Query": {"CheckpointsTable", "RecordsTable"},
        "dynamodb:BatchGetItem": {"RecordsTable"},
    },
    # The purge: its step and lease on the client item, every item the client owns (keys paged, deleted in batches),
    # then the client item; continuations through its queue; the remote clean-up as unlink does; the close of a sync
    # a DELETE stopped midway left open (finish_run: UpdateItem on SyncRuns and Clients, the run read for its event).
    "PurgeFunction": merged(
        {
            "dynamodb:GetItem": {"SyncRunsTable"},
            "dynamodb:UpdateItem": {"SyncRunsTable"},
            "dynamodb:Query": {"SyncRunsTable", "CheckpointsTable", "RecordsTable"},
            "dynamodb:BatchWriteItem": {"SyncRunsTable", "CheckpointsTable", "RecordsTable"},
            "dynamodb:DeleteItem": {"ClientsTable"},
            "sqs:SendMessage": {"PurgeQueue"},
        },
        REMOTE_CLEANUP,
        PUBLISH,
    ),
}


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_each_function_is_granted_exactly_the_minimum_it_needs(function_id):
    from tests.conftest import POLICIES

    granted = POLICIES.named_grants(function_id)

    assert {a: sorted(r) for a, r in granted.items()} == {a: sorted(r) for a, r in LEAST_PRIVILEGE[function_id].items()}


def test_the_policy_check_finds_a_call_a_function_is_not_granted():
    """The suite-wide check itself: a transaction part, a batch table or a secret a policy lacks is reported."""
    from tests.aws_calls import Call, disallowed
    from tests.conftest import POLICIES

    table = "xero-sync-local-{}Table".format
    calls = [
        # Allowed: unlink closing the client's run (the grant whose absence was once found on AWS only).
        Call(
            "UnlinkFunction",
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Update": {"TableName": table("SyncRuns")}},
                    {"Update": {"TableName": table("Clients")}},
                ]
            },
        ),
        # Not allowed: unlink writing records, the link function reading a token set's secret.
        Call("UnlinkFunction", "dynamodb", "BatchWriteItem", {"RequestItems": {table("Records"): []}}),
        Call("LinkFunction", "secretsmanager", "GetSecretValue", {"SecretId": "xero-sync-local/xero/token-sets/x"}),
        # Not a function's call (a test's own set-up): not checked.
        Call(None, "dynamodb", "DeleteTable", {"TableName": table("Clients")}),
    ]

    problems = disallowed(POLICIES, calls)

    assert problems == [
        "LinkFunction: GetSecretValue needs secretsmanager:GetSecretValue on "
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:xero-sync-local/xero/token-sets/x",
        "UnlinkFunction: BatchWriteItem needs dynamodb:BatchWriteItem on "
        "arn:aws:dynamodb:eu-west-1:123456789012:table/xero-sync-local-RecordsTable",
    ]


def test_the_event_bus_is_the_stacks_own_named_in_every_function_and_in_the_outputs():
    # The rest of the product subscribes with rules on this bus (docs/events.md): it must be findable after deploy.
    (bus_id,) = TEMPLATE.of_type("AWS::Events::EventBus")
    bus = RESOURCES[bus_id]["Properties"]
    assert bus["Name"] == {"Fn::Sub": "${AWS::StackName}-events"}
    outputs = TEMPLATE.cfn["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    for function_id, function in FUNCTIONS.items():
        assert function["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": bus_id}, function_id


def test_a_purge_slice_outlasts_the_xero_clean_up_it_runs_before_its_first_time_check():
    from xero_sync.unlinking import REMOTE_CLEANUP_LONGEST_SECONDS

    purge = FUNCTIONS["PurgeFunction"]["Properties"]
    margin = Settings.model_fields["purge_time_margin_seconds"].default
    assert purge["Timeout"] >= REMOTE_CLEANUP_LONGEST_SECONDS + margin


# The names a resource holds alone in its account and region: two stacks of the template there (dev and prod,
# samconfig.toml) can only both be created if each such name carries the stack's name, or is left to CloudFormation.
UNIQUE_NAMES = {
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::KMS::Alias": "AliasName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudFront::OriginAccessControl": "Name",
}


def test_a_second_stack_in_the_same_account_and_region_takes_no_name_the_first_holds():
    clashing = {}
    for logical_id, resource in RESOURCES.items():
        name = resource.get("Properties", {}).get(UNIQUE_NAMES.get(resource["Type"], ""))
        if name is not None and "AWS::StackName" not in json.dumps(name):
            clashing[logical_id] = name
    assert clashing == {}


PUBLISHERS = {
    "LinkFunction",
    "UnlinkFunction",
    "SyncNowFunction",
    "SyncDispatchFunction",
    "SyncClientFunction",
    "ClientsFunction",
    "PurgeFunction",
}


def test_only_the_functions_that_end_runs_or_change_links_put_events_and_only_on_the_bus():
    granted: dict[str, list[str]] = {}
    for function_id in FUNCTIONS:
        for statement in policy_statements(function_id):
            actions = as_list(statement["Action"])
            if any(a.startswith("events:") or a == "*" for a in actions):
                assert actions == ["events:PutEvents"], f"{function_id}: {actions}"
                assert "Condition" not in statement, function_id
                granted.setdefault(function_id, []).extend(as_list(statement["Resource"]))
    assert set(granted) == PUBLISHERS
    for function_id, resources in granted.items():
        assert resources == [{"Fn::GetAtt": ["EventBus", "Arn"]}], function_id
