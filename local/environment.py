"""Points this process's handlers at a set of endpoints and resources: the Lambda environment of a function, plus
where AWS is. Clients cached from an earlier environment (settings, the SQS client, PynamoDB connections) are
dropped so the next call builds them anew."""

import os
from collections.abc import Mapping


def apply_function_environment(environment: Mapping[str, str], aws_endpoints: Mapping[str, str] | None = None) -> None:
    os.environ.update(environment)
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        os.environ.pop(variable, None)
    os.environ.update(aws_endpoints or {})
    forget_cached_clients()


def forget_cached_clients() -> None:
    from aws_lambda_powertools.utilities import parameters

    from xero_sync import models, queue, runs, tokens
    from xero_sync.config import get_settings

    get_settings.cache_clear()
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # their boto3 clients keep the endpoint they were made with
    tokens._secrets_manager.cache_clear()
    queue._sqs.cache_clear()
    runs.transaction_connection.cache_clear()
    for model in (
        models.Client,
        models.TokenSetRef,
        models.OAuthState,
        models.SyncRun,
        models.Checkpoint,
        models.XeroRecord,
    ):
        model._connection = None
