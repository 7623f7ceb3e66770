"""The AWS calls the functions make, recorded from botocore, and the IAM policies template.yaml gives them.

moto and DynamoDB Local enforce no IAM, so a grant a function lacks would only show on AWS. Every botocore call made
while a function's handler runs (local.stack.handler_loader names the running function) is turned into the IAM actions
and resource ARNs AWS authorises it by (a TransactWriteItems into its per-item actions, a batch into one action per
table, a PutEvents into the buses its entries name, a Secrets Manager read or write of a KMS-encrypted secret into
the KMS use it implies) and checked against that function's policy statements. tests/conftest.py fails the test
during which a function made a call its policy does not allow.
"""

import contextvars
import fnmatch
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.history import BaseHistoryHandler, get_global_history_recorder

from local.stack import handler_loader as handlers
from local.stack.template import LOCAL_ACCOUNT, PhysicalResource, Template

_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Grant:
    """One IAM action on one resource ARN."""

    action: str
    resource: str


@dataclass(frozen=True)
class Call:
    function: str | None
    service: str
    operation: str
    params: dict[str, Any] = field(compare=False, hash=False)

    @property
    def signature(self) -> tuple[str, str, str]:
        """What a call is, without its keys or values: service, operation and the tables or queue it names."""
        return self.service, self.operation, json.dumps(_named_targets(self.params), sort_keys=True)


def _named_targets(params: dict[str, Any]) -> list[str]:
    targets = [params.get(name) for name in ("TableName", "IndexName", "QueueUrl")]
    targets += sorted(params.get("RequestItems") or {})
    for item in params.get("TransactItems") or []:
        targets += [f"{kind}:{part.get('TableName')}" for kind, part in item.items()]
    return [str(t) for t in targets if t]


def canonical_resources(template: Template) -> dict[str, PhysicalResource]:
    """Every resource's name and ARN as AWS would spell them, whichever engine the test runs on (DynamoDB Local
    names its tables' ARNs after its own region and account)."""
    physical = template.named_resources()
    region = template.region
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        name = template.physical_name(logical_id)
        physical[logical_id] = PhysicalResource(
            name, {"Arn": f"arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT}:table/{name}"}
        )
    for logical_id in template.of_type("AWS::KMS::Key"):
        physical[logical_id] = PhysicalResource(
            logical_id, {"Arn": f"arn:aws:kms:{region}:{LOCAL_ACCOUNT}:key/{logical_id}"}
        )
    return physical


class Policies:
    """Each function's Allow statements (its role's inline policies), resolved against the resources' names."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.physical = physical = canonical_resources(template)
        functions = template.of_type("AWS::Lambda::Function")
        self.statements: dict[str, list[dict[str, Any]]] = {}
        for function_id, function in functions.items():
            role = template.resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
            self.statements[function_id] = [
                self._narrowed_to_aliased_keys(template.resolve(statement, physical))
                for policy in role["Properties"].get("Policies", [])
                for statement in policy["PolicyDocument"]["Statement"]
                if statement.get("Effect") == "Allow"
            ]

    def _narrowed_to_aliased_keys(self, statement: dict[str, Any]) -> dict[str, Any]:
        """A statement on every key that a kms:ResourceAliases condition limits to the keys of those aliases (the
        roles name TokenKey so: its key policy names them) grants exactly those keys."""
        condition = statement.get("Condition", {}).get("ForAnyValue:StringEquals", {})
        if "kms:ResourceAliases" not in condition:
            return statement
        key_of_alias = {
            self.template.resolve(alias["Properties"]["AliasName"], self.physical): alias["Properties"]["TargetKeyId"]
            for alias in self.template.of_type("AWS::KMS::Alias").values()
        }
        keys = [
            self.physical[key_of_alias[name]["Ref"]].attributes["Arn"]
            for name in _as_list(condition["kms:ResourceAliases"])
        ]
        return {**statement, "Resource": keys}

    def grants(self, function_id: str) -> set[Grant]:
        return {
            Grant(action, resource)
            for statement in self.statements[function_id]
            for action in _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"])
        }

    def named_grants(self, function_id: str) -> dict[str, set[str]]:
        """The function's grants as action -> the resources' logical names (a table's index as `Table/index/name`,
        the token-set secrets as `token-sets/*`)."""
        named: dict[str, set[str]] = {}
        for grant in self.grants(function_id):
            named.setdefault(grant.action, set()).add(self.resource_name(grant.resource))
        return named

    def resource_name(self, arn: str) -> str:
        names = {resource.attributes.get("Arn", resource.ref): logical for logical, resource in self.physical.items()}
        names.update(
            {resource.ref: logical for logical, resource in self.physical.items() if resource.ref.startswith("arn:")}
        )
        base, _, index = arn.partition("/index/")
        if base in names:
            return f"{names[base]}/index/{index}" if index else names[base]
        prefix = (
            f"arn:aws:secretsmanager:{self.template.region}:{LOCAL_ACCOUNT}:secret:{self.template.stack_name}/xero/"
        )
        if arn.startswith(prefix + "token-sets/"):
            return "token-sets/*"
        return arn

    def allows(self, function_id: str, grant: Grant) -> bool:
        return any(
            fnmatch.fnmatchcase(grant.action.lower(), allowed.action.lower())
            and fnmatch.fnmatchcase(grant.resource, allowed.resource)
            for allowed in self.grants(function_id)
        )

    # --- what a call needs ----------------------------------------------------------------------------------------
    def needed(self, call: Call) -> set[Grant]:
        region, params = self.template.region, call.params
        if call.service == "dynamodb":
            return self._dynamodb(call.operation, params, region)
        if call.service == "secretsmanager":
            secret = str(params.get("SecretId") or params.get("Name"))
            # A secret named by its full ARN carries the random suffix AWS adds to the name; the policy's does too.
            name = _SECRET_SUFFIX.sub("", secret.split(":secret:", 1)[1]) if ":secret:" in secret else secret
            arn = f"arn:aws:secretsmanager:{region}:{LOCAL_ACCOUNT}:secret:{name}"
            needed = {Grant(f"secretsmanager:{call.operation}", arn)}
            key = self._customer_key_of(name)
            if key is None:  # the AWS managed key: its own policy lets the account use it through Secrets Manager
                return needed
            if call.operation in ("CreateSecret", "PutSecretValue"):
                needed |= {Grant("kms:GenerateDataKey", key), Grant("kms:Decrypt", key)}
            elif call.operation == "GetSecretValue":
                needed.add(Grant("kms:Decrypt", key))
            return needed
        if call.service == "sqs":
            queue = str(params.get("QueueUrl")).rstrip("/").rsplit("/", 1)[-1]
            action = "SendMessage" if call.operation == "SendMessageBatch" else call.operation
            return {Grant(f"sqs:{action}", f"arn:aws:sqs:{region}:{LOCAL_ACCOUNT}:{queue}")}
        if call.service == "events" and call.operation == "PutEvents":
            buses = {str(entry.get("EventBusName") or "default") for entry in params["Entries"]}
            return {
                Grant(
                    "events:PutEvents",
                    bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{LOCAL_ACCOUNT}:event-bus/{bus}",
                )
                for bus in buses
            }
        return {Grant(f"{call.service}:{call.operation}", "*")}

    def _customer_key_of(self, secret_name: str) -> str | None:
        """The ARN of the template's key a secret is encrypted with: TokenKey for the token sets (the code creates
        them with TOKEN_KMS_KEY_ID), a template secret's own KmsKeyId when it names a key of the template."""
        if secret_name.startswith(f"{self.template.stack_name}/xero/token-sets/"):
            return self.physical["TokenKey"].attributes["Arn"]
        for resource in self.template.of_type("AWS::SecretsManager::Secret").values():
            properties = resource["Properties"]
            key = properties.get("KmsKeyId")
            if self.template.resolve(properties["Name"], {}) == secret_name and isinstance(key, dict) and "Ref" in key:
                return self.physical[key["Ref"]].attributes["Arn"]
        return None

    @staticmethod
    def _dynamodb(operation: str, params: dict[str, Any], region: str) -> set[Grant]:
        def arn(table: str, index: str | None = None) -> str:
            base = f"arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT}:table/{table}"
            return f"{base}/index/{index}" if index else base

        if operation in ("BatchGetItem", "BatchWriteItem"):
            return {Grant(f"dynamodb:{operation}", arn(table)) for table in params["RequestItems"]}
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return {
                Grant(f"dynamodb:{_TRANSACT_ACTIONS.get(kind, 'GetItem')}", arn(part["TableName"]))
                for item in params["TransactItems"]
                for kind, part in item.items()
            }
        return {Grant(f"dynamodb:{operation}", arn(params["TableName"], params.get("IndexName")))}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class CallRecorder:
    """Every botocore call of this process while installed; `calls` grows as they are made."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(Call(handlers.CURRENT_FUNCTION.get(), service, operation, dict(params)))

    def since(self, start: int) -> list[Call]:
        with self._lock:
            return self.calls[start:]

    @contextmanager
    def installed(self) -> Iterator["CallRecorder"]:
        """Records through botocore's global history recorder: every client of every session reports each API call
        to it (service, operation, the parameters as the caller passed them). Event hooks (before-call and the like)
        live on each session's emitter, and the sessions here are many and made out of reach: boto3's default one
        (which moto's mock_aws replaces), boto3.Session()s, and one per thread per PynamoDB connection."""
        history = get_global_history_recorder()
        handler = _ApiCalls(self)
        submit = ThreadPoolExecutor.submit

        def submit_in_context(pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            # A function's worker threads (the sync engine's) are still that function.
            return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

        history.add_handler(handler)
        history.enable()
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(ThreadPoolExecutor, "submit", submit_in_context)
                yield self
        finally:
            handler.active = False  # the recorder has no remove_handler; an inactive handler records nothing
            history.disable()


class _ApiCalls(BaseHistoryHandler):
    """botocore's history handler: its API_CALL events are the calls (HTTP_REQUEST and the rest are ignored)."""

    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder
        self.active = True

    def emit(self, event_type: str, payload: Any, source: str) -> None:
        if self.active and event_type == "API_CALL":
            self.recorder.record(payload["service"], payload["operation"], payload["params"])


def disallowed(policies: Policies, calls: list[Call]) -> list[str]:
    """Each call a function made that its policy does not allow, with the grant it lacks."""
    problems = []
    for call in calls:
        if call.function is None or call.function not in policies.statements:
            continue
        for grant in sorted(policies.needed(call), key=lambda g: (g.action, g.resource)):
            if not policies.allows(call.function, grant):
                problems.append(f"{call.function}: {call.operation} needs {grant.action} on {grant.resource}")
    return sorted(set(problems))
