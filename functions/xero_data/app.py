"""Data API: a client's imported Xero data, read-only: the organisation view, pages of a resource, one record."""

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from xero_sync import xero_data
from xero_sync.api import ClientIdPath, caller_practice_id, create_resolver, documented, resolve
from xero_sync.ids import UUID_PATTERN
from xero_sync.observability import logger, metrics, tracer
from xero_sync.schemas import XeroOrganisationView, XeroRecordJson, XeroRecordPage

# The records' schemas are Xero's (derived from its OpenAPI description); the routes' responses name them.
app = create_resolver(xero_data.component_schemas())
ResourcePath = Annotated[
    str, Path(alias="resource", min_length=1, max_length=64, description="A Xero resource: Invoices, Contacts...")
]
XeroIdPath = Annotated[str, Path(alias="xeroId", min_length=1, max_length=255, description="The record's Xero id")]
PageSize = Annotated[
    int, Query(ge=1, le=xero_data.MAX_PAGE_SIZE, description="Records a page at most (a filtered page may hold fewer)")
]
Cursor = Annotated[str | None, Query(min_length=1, max_length=2048, description="nextCursor of the previous page")]
UpdatedSince = Annotated[
    datetime | None,
    Query(alias="updatedSince", description="Only records Xero last updated at or after this (ISO 8601; UTC if naive)"),
]
Status = Annotated[str | None, Query(min_length=1, max_length=64, description="Only records with this Xero status")]
Ids = Annotated[
    str | None,
    Query(min_length=1, max_length=10_000, description="Only these records: Xero ids, comma-separated, at most 100"),
]
ContactId = Annotated[
    str | None,
    Query(
        alias="contactId",
        pattern=UUID_PATTERN,
        description="Only the records of this contact, by its ContactID (resources that hold one: Invoices, "
        "CreditNotes, Payments...)",
    ),
]


@app.get("/clients/<clientId>/xero", responses=documented())
def get_organisation(client_id: ClientIdPath) -> XeroOrganisationView:
    return xero_data.organisation_view(caller_practice_id(app), client_id)


@app.get("/clients/<clientId>/xero/<resource>", responses=documented())
def list_records(
    client_id: ClientIdPath,
    resource: ResourcePath,
    limit: PageSize = xero_data.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
    status: Status = None,
    ids: Ids = None,
    contact_id: ContactId = None,
) -> XeroRecordPage:
    return xero_data.list_records(
        caller_practice_id(app), client_id, resource, limit, cursor, updated_since, status, ids, contact_id
    )


@app.get("/clients/<clientId>/xero/<resource>/<xeroId>", responses=documented())
def get_record(client_id: ClientIdPath, resource: ResourcePath, xero_id: XeroIdPath) -> XeroRecordJson:
    return xero_data.get_record(caller_practice_id(app), client_id, resource, xero_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
