"""The events the rest of the product subscribes to, on the stack's own EventBridge bus (docs/events.md).

Every run that ends puts one `Xero Sync Succeeded` or `Xero Sync Failed`; every change of a client's link puts one
`Xero Link Changed`. They are put by the logic that records the change (runs.py, linking.py, unlinking.py,
deletion.py), after it is recorded, never by handlers.

At most once: an event is put after its change is stored, and a failure to put it is logged (and counted as the
`EventsNotPublished` metric), never raised, so it can neither fail nor redo the run or link it reports. The stored
state stays the truth (GET /clients/{id}, GET /clients/{id}/syncs); a consumer that must not miss one reconciles
from there. botocore's standard retries cover throttling and EventBridge's own errors before an event is given up.
"""

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pynamodb.attributes import MapAttribute

from xero_sync import aws_clients
from xero_sync.config import get_settings
from xero_sync.models import Client, LinkState, RunStatus, SyncRun
from xero_sync.observability import logger, metrics

SOURCE = "xero-sync"
SYNC_SUCCEEDED = "Xero Sync Succeeded"
SYNC_FAILED = "Xero Sync Failed"
LINK_CHANGED = "Xero Link Changed"

LinkChange = Literal["linked", "relinked", "unlinked", "needs_relink", "deleted"]


class EventDetail(BaseModel):
    """An event's detail: JSON in camelCase, as the API's."""

    # Each model's validator is built at its first use (defer_build): a function uses a few of them, and its cold
    # start would otherwise build them all.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, frozen=True, defer_build=True
    )
    detail_type: ClassVar[str]


class ResourceCounts(EventDetail):
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


class SyncSucceeded(EventDetail):
    detail_type: ClassVar[str] = SYNC_SUCCEEDED

    practice_id: str
    client_id: str
    run_id: str
    trigger: str
    mode: str
    status: Literal["succeeded", "partial", "failed"] = "succeeded"
    counts: dict[str, ResourceCounts]  # per Xero resource, what this run changed in the stored records
    last_successful_sync_at: datetime | None  # None: the client never synced successfully


class SyncFailed(SyncSucceeded):
    detail_type: ClassVar[str] = SYNC_FAILED

    # "partial": some resources failed (failedResources), the others were imported
    status: Literal["succeeded", "partial", "failed"] = "failed"
    failed_resources: list[str] = []
    error_code: str
    error_message: str  # the code's fixed message (errors.RUN_ERROR_MESSAGES), never an exception's text


class LinkChanged(EventDetail):
    detail_type: ClassVar[str] = LINK_CHANGED

    practice_id: str
    client_id: str
    tenant_id: str
    change: LinkChange
    link_state: LinkState
    reason_code: str | None = None  # why, where there is a code for it (needs_relink: the error Xero's refusal was)


def sync_ended(run: SyncRun, last_successful_sync_at: datetime | None) -> SyncSucceeded | SyncFailed:
    """The event of a run that has just ended, from the run as stored."""
    raw = run.counts.as_dict() if isinstance(run.counts, MapAttribute) else dict(run.counts or {})
    counts = {name: ResourceCounts.model_validate(dict(value)) for name, value in raw.items()}
    fields: dict[str, Any] = {
        "practice_id": run.practice_id,
        "client_id": run.client_id,
        "run_id": run.run_id,
        "trigger": run.trigger,
        "mode": run.mode,
        "counts": counts,
        "last_successful_sync_at": last_successful_sync_at,
    }
    if run.status == RunStatus.SUCCEEDED.value:
        return SyncSucceeded(**fields)
    return SyncFailed(
        **fields,
        status="partial" if run.status == RunStatus.PARTIAL.value else "failed",
        failed_resources=sorted(run.failed_resources or ()),
        error_code=run.error_code or "sync_error",
        error_message=run.error_message or "",
    )


def link_changed(client: Client, change: LinkChange, reason_code: str | None = None) -> LinkChanged:
    return LinkChanged(
        practice_id=client.practice_id,
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        change=change,
        link_state=LinkState(client.link_state),
        reason_code=reason_code,
    )


def publish(detail: EventDetail) -> bool:
    """Puts one event on the bus; True when EventBridge took it. Never raises (see the module's docstring)."""
    entry = {
        "Source": SOURCE,
        "DetailType": detail.detail_type,
        "Detail": detail.model_dump_json(),
        "EventBusName": get_settings().event_bus_name,
    }
    try:
        response = aws_clients.events().put_events(Entries=[entry])
    except Exception as error:  # whatever went wrong, the change it reports is stored: it must stand
        failure = type(error).__name__
    else:
        if not response.get("FailedEntryCount"):
            return True
        failure = str(response["Entries"][0].get("ErrorCode", "unknown"))
    logger.error("event not published", extra={"detail_type": detail.detail_type, "error": failure})
    metrics.add_metric(name="EventsNotPublished", unit="Count", value=1)
    return False
