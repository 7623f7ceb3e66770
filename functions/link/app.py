"""Link clients with Xero: start the OAuth flow (add, relink) and complete it for the user who started it."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import linking
from xero_sync.api import ClientIdPath, caller_practice_id, caller_user_id, create_resolver, resolve
from xero_sync.limits import limited
from xero_sync.linking import LinkCompletion, LinkOutcome, LinkStarted
from xero_sync.observability import logger, metrics, tracer

app = create_resolver()


@app.post("/clients/link", **limited({201: {"description": "Send the user to authorizeUrl"}}))
def start_link() -> tuple[LinkStarted, int]:
    return linking.start_link(caller_practice_id(app), caller_user_id(app)), 201


@app.post("/clients/<clientId>/link", **limited({201: {"description": "Send the user to authorizeUrl"}}))
def start_relink(client_id: ClientIdPath) -> tuple[LinkStarted, int]:
    return linking.start_link(caller_practice_id(app), caller_user_id(app), client_id), 201


@app.post(
    "/xero/link-completions",
    **limited(
        {200: {"description": "Linked or relinked: the clients the organisations chosen in Xero became"}},
        HTTPStatus.FORBIDDEN,
        HTTPStatus.CONFLICT,
        HTTPStatus.SERVICE_UNAVAILABLE,
    ),
)
def complete_link(completion: Annotated[LinkCompletion, Body()]) -> LinkOutcome:
    return linking.complete_link(caller_practice_id(app), caller_user_id(app), completion)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
