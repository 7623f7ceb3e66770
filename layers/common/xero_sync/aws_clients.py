"""The AWS clients the product calls, each built once per process and only at its first use: boto3 is imported
there, so a function that never sends a message or reads a secret never imports it (~25 ms of a cold start).
DynamoDB is reached through PynamoDB (models.py), which needs only botocore."""

from typing import TYPE_CHECKING, Any

from botocore.config import Config

from xero_sync.config import per_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# botocore's standard retries (throttling, 5xx, connection errors) with a few more attempts than its default.
_RETRYING = Config(retries={"mode": "standard", "max_attempts": 5})


@per_environment
def sqs() -> "SQSClient":
    import boto3

    return boto3.client("sqs", config=_RETRYING)


@per_environment
def secrets_manager() -> "SecretsManagerClient":
    import boto3

    return boto3.client("secretsmanager", config=_RETRYING)


@per_environment
def cached_secrets() -> "SecretsProvider":
    """Secrets read through Powertools' cache (each read's max_age), over the client above: Powertools' default
    provider would build a boto3 session and client of its own, a second for a cold start that reads token sets."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=secrets_manager())


@per_environment
def events() -> Any:  # an EventBridge client (no type stubs for it in this project)
    import boto3

    # Short timeouts: a slow bus must not hold an API answer or a sync's Lambda for long.
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    return boto3.client("events", config=config)
