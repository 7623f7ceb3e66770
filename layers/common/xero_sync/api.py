"""What every HTTP-facing function shares: the resolver, typed error bodies, body limits and the caller's practice.

API Gateway's JWT authorizer has already verified the token; the handler only reads the practice claim from it.
Every failure leaves as `{"error": {"code", "message", "details"?}}` with a 4xx (or a 500 that says nothing inside).
"""

import base64
import binascii
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from xero_sync.config import get_settings
from xero_sync.errors import ApiError, Unauthorized
from xero_sync.ids import CLIENT_ID_PATTERN, MAX_PRACTICE_ID_BYTES, practice_id_problem
from xero_sync.observability import logger

if TYPE_CHECKING:
    # Powertools' OpenAPI models take ~65 ms to import: only the OpenAPI document needs them, never a request.
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

# Path parameters are validated before any lookup. The template names it {clientId}; Python calls it client_id.
ClientIdPath = Annotated[
    str, Path(alias="clientId", pattern=CLIENT_ID_PATTERN, description="The client's id (a UUID, lower case)")
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


_ERROR_DESCRIPTIONS = {
    HTTPStatus.BAD_REQUEST: "malformed_json, invalid_cursor; a link completion's invalid_state, access_denied, "
    "xero_error, missing_code, exchange_failed, no_organisation",
    HTTPStatus.UNAUTHORIZED: "unauthorized: the token names no practice or user, or a practice id that is not UTF-8 "
    f"text or is over {MAX_PRACTICE_ID_BYTES} bytes",
    HTTPStatus.FORBIDDEN: "state_mismatch: the link was started by another user",
    HTTPStatus.NOT_FOUND: "client_not_found (also another practice's client), route_not_found; the data API's "
    "resource_not_found (details name the valid resources) and record_not_found",
    HTTPStatus.CONFLICT: "client_not_linked; a link completion's wrong_organisation, client_being_deleted, "
    "connection_being_removed",
    HTTPStatus.SERVICE_UNAVAILABLE: "a link completion's xero_unavailable: Xero could not be reached, try again in a "
    "few minutes; Sync Now's enqueue_failed: the sync could not be queued, try again; Sync Now's sync_contended: the "
    "client kept changing while its sync was being queued, try again",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    HTTPStatus.UNPROCESSABLE_ENTITY: "validation_error, with where and why",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limited: the practice's requests to mutating routes are over its limit for "
    "now; full_sync_limited: a full sync of this client was asked for too recently. Retry-After says when to retry",
}
# A 429 says when the same request would be taken (limits.py).
_ERROR_HEADERS = {
    HTTPStatus.TOO_MANY_REQUESTS: {
        "Retry-After": {
            "description": "Seconds until the request would be taken (at least 1)",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    }
}
_EVERY_ROUTE = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.NOT_FOUND,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
)


def documented(success: dict[int, Any] | None = None, *more_errors: HTTPStatus) -> dict[int, Any]:
    """A route's OpenAPI responses: its own, and the typed errors every route can answer (with ErrorBody, not
    Powertools' default validation error, which this API never sends)."""
    errors = {
        status.value: {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
            **({"headers": _ERROR_HEADERS[status]} if status in _ERROR_HEADERS else {}),
        }
        for status in (*_EVERY_ROUTE, *more_errors)
    }
    # A success answer without content gets the route's return type as its schema (Powertools fills it in).
    return {**errors, **(success or {200: {"description": "Successful Response"}})}


def error_response(
    status: HTTPStatus,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(exclude_none=True),
        headers=headers,
    )


def _validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    # Only where and why: the rejected input itself is never echoed back (it may be anything).
    return [{"location": ".".join(str(part) for part in e.get("loc", ())), "reason": e.get("msg", "")} for e in errors]


class _Resolver(APIGatewayHttpResolver):
    """Powertools' resolver, whose OpenAPI document also carries component schemas that are no pydantic model's
    (the data API's Xero record schemas, which its routes' responses name by $ref)."""

    def __init__(self, component_schemas: dict[str, Any]) -> None:
        super().__init__(enable_validation=True)
        self._component_schemas = component_schemas

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> "OpenAPI":
        from aws_lambda_powertools.event_handler.openapi.models import Components, Schema  # imported here: see above

        document = super().get_openapi_schema(*args, **kwargs)
        if self._component_schemas:
            components = document.components or Components()
            schemas = {name: Schema.model_validate(schema) for name, schema in self._component_schemas.items()}
            components.schemas = {**(components.schemas or {}), **schemas}
            document.components = components
        return document


def create_resolver(component_schemas: dict[str, Any] | None = None) -> APIGatewayHttpResolver:
    """A resolver with request/response validation, OpenAPI, and the typed error mapping every API shares."""
    app = _Resolver(component_schemas or {})

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response[str]:
        return error_response(error.status, error.code, error.message, error.details, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[str]:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is not valid JSON")
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error", "the request is invalid", _validation_details(errors)
        )

    @app.exception_handler(UnicodeDecodeError)
    def _body_not_text(error: UnicodeDecodeError) -> Response[str]:
        # API Gateway base64-encodes a body that is not UTF-8; Powertools decodes it as UTF-8 to parse it (JSON or a
        # form) and lets the error through. Only that is the caller's fault: any other is a defect of ours.
        if not _body_is_text(app.current_event.raw_event):
            return error_response(HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is not UTF-8 text")
        return _internal_error()

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "the request body must be application/json"
        )

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[str]:
        return error_response(HTTPStatus.NOT_FOUND, "route_not_found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response[str]:
        return _internal_error()

    if get_settings().enable_swagger:
        app.enable_swagger(path="/swagger", title="Xero integration API")
    return app


def _internal_error() -> Response[str]:
    logger.exception("unhandled error")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side")


def _body_is_text(event: dict[str, Any]) -> bool:
    body = event.get("body")
    if not (event.get("isBase64Encoded") and body):
        return True
    try:
        base64.b64decode(body).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True


def resolve(app: APIGatewayHttpResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answers one HTTP API event. An oversized body is refused before anything parses it."""
    limit = get_settings().max_request_body_bytes
    if len(event.get("body") or "") > limit:
        too_large = error_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", f"the request body is over {limit} bytes"
        )
        return {"statusCode": too_large.status_code, "headers": too_large.headers, "body": too_large.body}
    return app.resolve(event, context)


def caller_user_id(app: APIGatewayHttpResolver) -> str:
    """The verified JWT's subject: who in the practice is acting."""
    subject = (app.current_event.request_context.authorizer.jwt_claim or {}).get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("the token names no user")
    return subject


def caller_practice_id(app: APIGatewayHttpResolver) -> str:
    """The practice named by the verified JWT; a token without it, or naming one no practice id can be
    (ids.practice_id_problem: the messages that name a practice take any other), is refused."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    practice_id = claims.get(get_settings().practice_claim)
    if not isinstance(practice_id, str) or not practice_id:
        raise Unauthorized("the token names no practice")
    if (problem := practice_id_problem(practice_id)) is not None:
        raise Unauthorized(f"the token's practice id {problem}")
    return practice_id
