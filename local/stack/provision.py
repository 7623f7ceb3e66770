"""Creates what template.yaml declares (tables with their indexes and TTL, queues with their dead-letter
redrive, the KMS key, the app secret, the event bus) on whatever endpoints the boto3 session reaches: DynamoDB Local
and a moto server for the local stack, or moto in-process for the integration tests.

`observe_events` adds what is not the template's: a downstream consumer of the bus (a rule sending every event to a
queue of the local stack's own), which the local stack and the tests read to see what was published."""

import json
from collections.abc import Mapping
from typing import Any

import boto3

from local.stack.template import PhysicalResource, Template

# The Xero app the local stack registers with the emulator (the emulator accepts these credentials).
LOCAL_XERO_APP = {"client_id": "local-xero-app", "client_secret": "local-xero-app-secret"}


def provision(
    template: Template,
    session: boto3.Session,
    queue_overrides: Mapping[str, Mapping[str, str]] | None = None,
    xero_app: Mapping[str, str] = LOCAL_XERO_APP,
) -> dict[str, PhysicalResource]:
    """Creates every table, queue, key and secret; returns what Ref / Fn::GetAtt give for each resource."""
    physical: dict[str, PhysicalResource] = {}
    _create_tables(template, session, physical)
    _create_queues(template, session, physical, queue_overrides or {})
    _create_keys_and_secrets(template, session, physical, xero_app)
    _create_event_buses(template, session, physical)
    # Roles, alarms, log groups...: named, not created.
    return {**template.named_resources(), **physical}


def _create_tables(template: Template, session: boto3.Session, physical: dict[str, PhysicalResource]) -> None:
    dynamodb = session.client("dynamodb")
    ttl = template.ttl_attributes()
    for logical_id, definition in template.table_definitions().items():
        description = dynamodb.create_table(**definition)["TableDescription"]
        dynamodb.get_waiter("table_exists").wait(TableName=definition["TableName"])
        if logical_id in ttl:
            dynamodb.update_time_to_live(
                TableName=definition["TableName"],
                TimeToLiveSpecification={"AttributeName": ttl[logical_id], "Enabled": True},
            )
        physical[logical_id] = PhysicalResource(
            ref=definition["TableName"], attributes={"Arn": description["TableArn"]}
        )


def _create_queues(
    template: Template,
    session: boto3.Session,
    physical: dict[str, PhysicalResource],
    overrides: Mapping[str, Mapping[str, str]],
) -> None:
    sqs = session.client("sqs")
    queues = template.of_type("AWS::SQS::Queue")
    # Dead-letter queues first: a redrive policy names its target's ARN.
    for logical_id in sorted(queues, key=lambda name: "RedrivePolicy" in queues[name]["Properties"]):
        properties = queues[logical_id]["Properties"]
        attributes: dict[str, str] = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            if key in properties:
                attributes[key] = str(template.resolve(properties[key], physical))
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(template.resolve(properties["RedrivePolicy"], physical))
        attributes.update(overrides.get(logical_id, {}))
        name = template.physical_name(logical_id)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        physical[logical_id] = PhysicalResource(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


def _create_keys_and_secrets(
    template: Template,
    session: boto3.Session,
    physical: dict[str, PhysicalResource],
    xero_app: Mapping[str, str],
) -> None:
    kms = session.client("kms")
    for logical_id, resource in template.of_type("AWS::KMS::Key").items():
        key = kms.create_key(Description=str(resource["Properties"].get("Description", logical_id)))["KeyMetadata"]
        physical[logical_id] = PhysicalResource(ref=key["KeyId"], attributes={"Arn": key["Arn"]})
    secrets = session.client("secretsmanager")
    for logical_id, resource in template.of_type("AWS::SecretsManager::Secret").items():
        properties: dict[str, Any] = resource["Properties"]
        created = secrets.create_secret(
            Name=str(template.resolve(properties["Name"], physical)),
            KmsKeyId=str(template.resolve(properties["KmsKeyId"], physical)),
            SecretString=json.dumps(dict(xero_app)),
        )
        physical[logical_id] = PhysicalResource(ref=created["ARN"], attributes={"Id": created["ARN"]})


def _create_event_buses(template: Template, session: boto3.Session, physical: dict[str, PhysicalResource]) -> None:
    events = session.client("events")
    for logical_id, resource in template.of_type("AWS::Events::EventBus").items():
        name = str(template.resolve(resource["Properties"]["Name"], physical))
        arn = events.create_event_bus(Name=name)["EventBusArn"]
        physical[logical_id] = PhysicalResource(ref=name, attributes={"Arn": arn, "Name": name})


# The local stack's own consumer of the bus (not the product's resource: a downstream subscriber's, as docs/events.md
# describes one), named apart from the template's resources.
EVENT_OBSERVER = "_local-event-observer"


def observe_events(template: Template, session: boto3.Session, physical: dict[str, PhysicalResource]) -> str:
    """A rule on each of the template's buses sending every event to one queue; returns that queue's URL."""
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=f"{template.stack_name}-{EVENT_OBSERVER}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = session.client("events")
    for logical_id in template.of_type("AWS::Events::EventBus"):
        bus = physical[logical_id].ref
        events.put_rule(Name=EVENT_OBSERVER, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        events.put_targets(Rule=EVENT_OBSERVER, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
    return url
