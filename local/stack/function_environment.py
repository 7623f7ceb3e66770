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


def paced_to_emulator(time_scale: float) -> dict[str, str]:
    """What the engine must be told when the Xero emulator runs its rate-limit clock `time_scale` times faster than
    Xero's: how long its minute lasts (the emulator's `rateLimits.timeScale` and this go together)."""
    return {"XERO_MINUTE_SECONDS": f"{60.0 / time_scale:g}"}


def forget_cached_clients() -> None:
    """Forgets what xero_sync built under an older environment (settings, boto3 clients and the secrets cached over
    them, PynamoDB connections)."""
    from xero_sync.config import forget_environment

    forget_environment()
