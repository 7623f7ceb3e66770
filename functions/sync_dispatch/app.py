"""Sync dispatch, invoked directly: by EventBridge Scheduler every night (`{"trigger": "nightly"}`: one sync message
per linked client) or by an operator (`{}`, or `{"clientIds": [...], "mode": "full"}` for just those clients)."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from xero_sync.dispatch import ConsoleDispatch, dispatch
from xero_sync.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = ConsoleDispatch.model_validate(event)
    except ValidationError as error:
        return {"error": "bad_request", "message": error.errors(include_url=False, include_input=False)}
    return asdict(dispatch(request))
