"""Shapes that cross a boundary: API responses and the sync queue's messages."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from xero_sync.catalogue import CATALOGUE
from xero_sync.ids import PracticeId
from xero_sync.models import LinkState, RunStatus, RunTrigger
from xero_sync.xero_pacing import WaitReason

# "initial": a client's first import (the link's sync of a client never synced); only the system sets it.
SyncMode = Literal["initial", "incremental", "full"]
RequestedMode = Literal["incremental", "full"]


class ApiModel(BaseModel):
    """JSON in camelCase, as the front end reads it."""

    # Each model's validator is built at its first use (defer_build): a function uses a few of them, and its cold
    # start would otherwise build them all.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, defer_build=True
    )


class CurrentRun(ApiModel):
    run_id: str
    status: RunStatus


class ClientSummary(ApiModel):
    client_id: str
    name: str
    tenant_id: str
    link_state: LinkState
    last_successful_sync_at: datetime | None
    current_run: CurrentRun | None


class ClientPage(ApiModel):
    items: list[ClientSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class RunWait(ApiModel):
    reason: WaitReason = Field(description="rate_limit, daily_limit, organisation_offline or xero_retry")
    until: datetime


class RunProgress(ApiModel):
    """A running sync as its worker last published it."""

    resources_done: int
    resources_total: int
    records_so_far: int = Field(description="Records read from Xero by this run so far")
    waiting_on: RunWait | None = None
    published_at: datetime


class CurrentRunDetail(CurrentRun):
    progress: RunProgress | None = Field(default=None, description="While running")
    waiting_on: RunWait | None = Field(default=None, description="What the run waits on, if it waits, until when")


class ClientOverview(ClientSummary):
    current_run: CurrentRunDetail | None
    link_state_reason: str | None
    last_error: str | None
    record_counts: dict[str, int] = Field(description="Records stored per Xero resource")
    last_imported_at: dict[str, datetime] = Field(
        default_factory=dict, description="When each resource was last imported (a partial run moves only its own)"
    )
    unavailable_resources: dict[str, datetime] = Field(
        default_factory=dict,
        description="Resources Xero does not offer this organisation, since when (asked again by the next sync; "
        "found so again, at a full sync or reconciliation)",
    )


class ResourceCountsView(ApiModel):
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = Field(default=0, description="Fetched but not storable (kept as stored, read again next run)")
    errors: list[str] = Field(default_factory=list, description="Why records were rejected (the first 20)")
    warnings: list[str] = Field(
        default_factory=list,
        description="pagination_missing, pagination_mismatch, pagination_resumed, pagination_stalled (the read "
        "could not prove its end: nothing was swept and it is read again next run), mass_deletion_confirmed, "
        "sweep_unconfirmed (the read that would confirm a deletion could not prove its end or rejected a record: "
        "nothing was deleted), sweep_refused (a whole read showed none of the records stored, where Xero shows "
        "deletions as a status: nothing was deleted)",
    )


class SyncRunView(ApiModel):
    run_id: str
    trigger: RunTrigger
    mode: SyncMode
    status: RunStatus
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    resumes_at: datetime | None
    waiting_reason: WaitReason | None = Field(default=None, description="What a queued or deferred run waits on")
    counts: dict[str, ResourceCountsView]
    api_calls: int
    rate_limited: int
    waited_seconds: float
    error_code: str | None
    error_message: str | None
    unavailable: list[str] = Field(
        default_factory=list, description="Resources Xero does not offer this organisation (asked again later)"
    )
    failed_resources: list[str] = Field(
        default_factory=list, description="A partial run's resources not imported this time"
    )


class SyncRunPage(ApiModel):
    items: list[SyncRunView]
    next_cursor: str | None


class SyncAccepted(ApiModel):
    run_id: str
    status: RunStatus


class SyncNowRequest(ApiModel):
    model_config = ConfigDict(extra="forbid")

    mode: RequestedMode = Field(default="incremental", description="full re-reads every record from Xero")


class SyncMessage(ApiModel):
    """One queued sync of one client. The run id ties the message to the run its client claimed."""

    practice_id: PracticeId
    client_id: str = Field(min_length=36, max_length=36)
    run_id: str = Field(min_length=1, max_length=64)
    trigger: RunTrigger
    mode: SyncMode = "incremental"


# --- the data API (xero_data.py) -------------------------------------------------------------------------------------
# A record is Xero's JSON as Xero shows it; its OpenAPI schema is Xero's own, per resource (xero_schemas.json, derived
# from Xero's OpenAPI description by scripts/xero-schemas.py), referenced by name.
def _xero_schema_ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/Xero{schema}"}


XeroRecordJson = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "anyOf": [_xero_schema_ref(name) for name in dict.fromkeys(s.xero_schema for s in CATALOGUE)],
            "description": "One record in Xero's JSON shape: the schema of the resource asked for",
        }
    ),
]
XeroOrganisationJson = Annotated[
    dict[str, Any] | None,
    WithJsonSchema({"anyOf": [_xero_schema_ref("Organisation"), {"type": "null"}]}),
]


class ResourceImport(ApiModel):
    resource: str = Field(description="The Xero resource (a catalogue name: Invoices, Contacts...)")
    records: int = Field(description="Records stored")
    last_imported_at: datetime | None = Field(
        description="When a sync last finished reading the resource from Xero (null until one has)"
    )
    last_changed_at: datetime | None = Field(
        description="The latest UpdatedDateUTC among the records imported: when the data last changed in Xero "
        "(null before the first import, and for resources Xero does not stamp)"
    )


class XeroOrganisationView(ApiModel):
    client_id: str
    organisation: XeroOrganisationJson = Field(description="The stored Organisation record (null before import)")
    resources: list[ResourceImport] = Field(description="Every resource the sync imports, in catalogue order")


class XeroRecordPage(ApiModel):
    resource: str
    items: list[XeroRecordJson]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")
