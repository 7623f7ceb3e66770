"""Link clients with Xero: start the OAuth flow (add, relink) and Xero's callback."""

from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import linking
from xero_sync.api import ClientIdPath, caller_practice_id, caller_user_id, create_resolver, documented, resolve
from xero_sync.config import get_settings
from xero_sync.limits import practice_limit
from xero_sync.linking import LinkOutcome, LinkStarted
from xero_sync.observability import logger, metrics, tracer

app = create_resolver()
CallbackParameter = Annotated[str | None, Query(max_length=2048)]


@app.post(
    "/clients/link",
    responses=documented({201: {"description": "Send the user to authorizeUrl"}}, HTTPStatus.TOO_MANY_REQUESTS),
    middlewares=[practice_limit],
)
def start_link() -> tuple[LinkStarted, int]:
    return linking.start_link(caller_practice_id(app), caller_user_id(app)), 201


@app.post(
    "/clients/<clientId>/link",
    responses=documented({201: {"description": "Send the user to authorizeUrl"}}, HTTPStatus.TOO_MANY_REQUESTS),
    middlewares=[practice_limit],
)
def start_relink(client_id: ClientIdPath) -> tuple[LinkStarted, int]:
    return linking.start_link(caller_practice_id(app), caller_user_id(app), client_id), 201


@app.get(
    "/xero/callback",
    responses=documented(
        {
            200: {
                "description": "The outcome (Accept: application/json)",
                "content": {"application/json": {"model": LinkOutcome}},
            },
            302: {
                "description": "Back to the front end, the outcome in the query string (Location); no body",
                "content": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}},
            },
        }
    ),
)
def xero_callback(
    state: CallbackParameter = None, code: CallbackParameter = None, error: CallbackParameter = None
) -> Response[str]:
    outcome = linking.complete_link(state, code, error)
    if "application/json" in (app.current_event.headers.get("accept") or ""):
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=outcome.model_dump_json())
    query = {"outcome": outcome.outcome, "code": outcome.code, "clientIds": ",".join(outcome.client_ids)}
    location = f"{get_settings().frontend_url}?{urlencode(query)}"
    return Response(status_code=302, headers={"Location": location}, content_type=content_types.TEXT_PLAIN, body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
