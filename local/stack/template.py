"""template.yaml, translated by aws-sam-translator exactly as CloudFormation would receive it, and the resources
it declares created on local endpoints (DynamoDB Local, moto). No resource is defined twice: tables, indexes,
queues, dead-letter queues, functions, routes, event sources and schedules are all read from the template.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LOCAL_ACCOUNT = "123456789012"  # moto's default account
LOCAL_REGION = "eu-west-1"
LOCAL_STACK_NAME = "xero-sync-local"

# Parameters the template needs that have no default; the local stack's own values.
LOCAL_PARAMETERS: dict[str, str] = {
    "Stage": "local",
    "JwtIssuer": "https://local.issuer/xero-sync",
    "JwtAudience": "xero-sync-local",
    "FrontendOrigin": "http://127.0.0.1:3000",
    "XeroRedirectUri": "http://127.0.0.1:3000/xero/callback",
    "XeroLoginUrl": "http://127.0.0.1:3002",
    "XeroIdentityUrl": "http://127.0.0.1:3002",
    "XeroApiUrl": "http://127.0.0.1:3002",
}
_CODE_BUCKET = "local-code"
_FUNCTION_IN_URI = re.compile(r"\$\{(\w+)\.Arn\}")


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline, it falls back to the ARNs it knows."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory_mb: int
    environment: dict[str, Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /clients/{clientId}
    function: str
    authorized: bool


@dataclass(frozen=True)
class QueueEventSource:
    queue: str
    function: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None


@dataclass(frozen=True)
class Schedule:
    function: str
    expression: str
    timezone: str
    input: dict[str, Any]


@dataclass
class PhysicalResource:
    """What Ref and Fn::GetAtt give for one resource once it exists."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class Template:
    def __init__(
        self,
        parameters: Mapping[str, str] | None = None,
        path: Path = TEMPLATE_PATH,
        stack_name: str = LOCAL_STACK_NAME,
        region: str = LOCAL_REGION,
    ) -> None:
        self.path = path
        self.stack_name = stack_name
        self.region = region
        self.parameters = {**LOCAL_PARAMETERS, **(parameters or {})}
        # The translator is imported only to translate: a process that just loads a handler
        # (local/stack/handler_loader.py, the benchmark's sync processes) must not carry its ~12 MB, which no Lambda
        # has.
        from samtranslator.yaml_helper import yaml_parse

        self.source = yaml_parse(path.read_text())
        self.code_dirs: dict[str, Path] = {}
        self.cfn = self._translate()
        self.resources: dict[str, dict[str, Any]] = self.cfn["Resources"]

    def _translate(self) -> dict[str, Any]:
        from samtranslator.translator.transform import transform

        source = json.loads(json.dumps(self.source))  # the translator mutates its input
        for logical_id, resource in source["Resources"].items():
            properties = resource.get("Properties", {})
            for key in ("CodeUri", "ContentUri"):
                if isinstance(properties.get(key), str):
                    self.code_dirs[logical_id] = (self.path.parent / properties[key]).resolve()
                    properties[key] = f"s3://{_CODE_BUCKET}/{properties[key]}"
        translated: dict[str, Any] = transform(source, self.parameters, _NoManagedPolicies())
        return translated

    # --- parameters and names ---------------------------------------------------------------------------------------
    @cached_property
    def parameter_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self.source.get("Parameters", {}).items():
            value = self.parameters.get(name, spec.get("Default"))
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [part.strip() for part in value.split(",")]
            values[name] = value
        values.update(
            {
                "AWS::StackName": self.stack_name,
                "AWS::Region": self.region,
                "AWS::AccountId": LOCAL_ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        return values

    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"

    def named_resources(self) -> dict[str, PhysicalResource]:
        """Every resource by its local name only, for those that are named but never created here."""
        named = {}
        for logical_id, resource in self.resources.items():
            name = self.physical_name(logical_id)
            service = resource["Type"].split("::")[1].lower()
            arn = f"arn:aws:{service}:{self.region}:{LOCAL_ACCOUNT}:{name}"
            named[logical_id] = PhysicalResource(ref=name, attributes={"Arn": arn, "QueueName": name})
            if resource["Type"] == "AWS::Events::EventBus":  # Ref gives its Name
                bus_name = self.resolve(resource["Properties"]["Name"], {})
                bus_arn = f"arn:aws:events:{self.region}:{LOCAL_ACCOUNT}:event-bus/{bus_name}"
                named[logical_id] = PhysicalResource(ref=bus_name, attributes={"Arn": bus_arn, "Name": bus_name})
            if resource["Type"] == "AWS::SecretsManager::Secret":  # Ref gives the ARN, named by its Name
                secret_name = self.resolve(resource["Properties"]["Name"], {})
                secret_arn = f"arn:aws:secretsmanager:{self.region}:{LOCAL_ACCOUNT}:secret:{secret_name}"
                named[logical_id] = PhysicalResource(ref=secret_arn, attributes={"Id": secret_arn})
        return named

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    # --- intrinsic functions ----------------------------------------------------------------------------------------
    def resolve(self, value: Any, physical: Mapping[str, PhysicalResource]) -> Any:
        """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join against parameters and created resources."""
        if isinstance(value, list):
            return [self.resolve(item, physical) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument, physical)
            if key == "Fn::GetAtt":
                name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return physical[name].attributes[attribute]
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                variables = {k: self.resolve(v, physical) for k, v in variables.items()}
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub_variable(m.group(1), variables, physical), text)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items, physical))
        return {key: self.resolve(item, physical) for key, item in value.items()}

    def _ref(self, name: str, physical: Mapping[str, PhysicalResource]) -> Any:
        if name in self.parameter_values:
            return self.parameter_values[name]
        return physical[name].ref

    def _sub_variable(self, name: str, variables: Mapping[str, Any], physical: Mapping[str, PhysicalResource]) -> str:
        if name in variables:
            return str(variables[name])
        if "." in name:
            resource, attribute = name.split(".", 1)
            return physical[resource].attributes[attribute]
        return str(self._ref(name, physical))

    # --- what the local stack runs ----------------------------------------------------------------------------------
    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """CreateTable arguments per table (keys, attributes and indexes as the template declares them)."""
        definitions = {}
        for logical_id, resource in self.of_type("AWS::DynamoDB::Table").items():
            properties = resource["Properties"]
            definition: dict[str, Any] = {
                "TableName": self.physical_name(logical_id),
                "KeySchema": properties["KeySchema"],
                "AttributeDefinitions": properties["AttributeDefinitions"],
                "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if "GlobalSecondaryIndexes" in properties:
                definition["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
            definitions[logical_id] = definition
        return definitions

    def ttl_attributes(self) -> dict[str, str]:
        return {
            logical_id: resource["Properties"]["TimeToLiveSpecification"]["AttributeName"]
            for logical_id, resource in self.of_type("AWS::DynamoDB::Table").items()
            if resource["Properties"].get("TimeToLiveSpecification", {}).get("Enabled")
        }

    def functions(self, physical: Mapping[str, PhysicalResource]) -> dict[str, Function]:
        functions = {}
        for logical_id, resource in self.of_type("AWS::Lambda::Function").items():
            properties = resource["Properties"]
            variables = properties.get("Environment", {}).get("Variables", {})
            functions[logical_id] = Function(
                logical_id=logical_id,
                code_dir=self.code_dirs[logical_id],
                handler=properties["Handler"],
                timeout=int(properties.get("Timeout", 3)),
                memory_mb=int(properties.get("MemorySize", 128)),
                environment={name: str(self.resolve(v, physical)) for name, v in variables.items()},
            )
        return functions

    def routes(self) -> list[Route]:
        routes = []
        for api in self.of_type("AWS::ApiGatewayV2::Api").values():
            for path, operations in api["Properties"]["Body"]["paths"].items():
                for method, operation in operations.items():
                    uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
                    match = _FUNCTION_IN_URI.search(uri)
                    if match is None:
                        raise ValueError(f"route {method} {path} does not integrate a function of this template")
                    security = operation.get("security", [])
                    authorized = bool(security) and all("NONE" not in scheme for scheme in security)
                    routes.append(Route(method.upper(), path, match.group(1), authorized))
        return routes

    def jwt_authorizer(self) -> dict[str, Any]:
        (api,) = self.of_type("AWS::ApiGatewayV2::Api").values()
        schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
        (scheme,) = (s for s in schemes.values() if s.get("x-amazon-apigateway-authorizer", {}).get("type") == "jwt")
        authorizer = scheme["x-amazon-apigateway-authorizer"]
        return {
            "identity_source": authorizer["identitySource"],
            "issuer": self.resolve(authorizer["jwtConfiguration"]["issuer"], {}),
            "audience": self.resolve(authorizer["jwtConfiguration"]["audience"], {}),
        }

    def cors_configuration(self) -> dict[str, Any] | None:
        """The HTTP API's CORS configuration (x-amazon-apigateway-cors: allowOrigins, allowMethods, ...), if any."""
        (api,) = self.of_type("AWS::ApiGatewayV2::Api").values()
        cors = api["Properties"]["Body"].get("x-amazon-apigateway-cors")
        return None if cors is None else dict(self.resolve(cors, {}))

    def access_log_format(self) -> str:
        """The HTTP API stage's access log line, its $context variables unfilled (the front door fills them)."""
        (stage,) = self.of_type("AWS::ApiGatewayV2::Stage").values()
        return str(self.resolve(stage["Properties"]["AccessLogSettings"]["Format"], {}))

    def queue_event_sources(self) -> list[QueueEventSource]:
        sources = []
        for resource in self.of_type("AWS::Lambda::EventSourceMapping").values():
            properties = resource["Properties"]
            concurrency = properties.get("ScalingConfig", {}).get("MaximumConcurrency")
            sources.append(
                QueueEventSource(
                    queue=properties["EventSourceArn"]["Fn::GetAtt"][0],
                    function=properties["FunctionName"]["Ref"],
                    batch_size=int(properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                    maximum_concurrency=int(self.resolve(concurrency, {})) if concurrency is not None else None,
                )
            )
        return sources

    def schedules(self) -> list[Schedule]:
        schedules = []
        for resource in self.of_type("AWS::Scheduler::Schedule").values():
            properties = resource["Properties"]
            target = properties["Target"]
            schedules.append(
                Schedule(
                    function=target["Arn"]["Fn::GetAtt"][0],
                    expression=str(self.resolve(properties["ScheduleExpression"], {})),
                    timezone=str(self.resolve(properties.get("ScheduleExpressionTimezone", "UTC"), {})),
                    input=json.loads(target.get("Input", "{}")),
                )
            )
        return schedules
