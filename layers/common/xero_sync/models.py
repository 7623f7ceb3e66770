"""DynamoDB tables as PynamoDB models. The key design is documented in docs/architecture.md ("Data model").

The tables themselves are defined once, in template.yaml; what every model shares (the process's one connection, table
names read from the settings at use) is `tables`.
Nothing here ever holds an OAuth token: a token set is referenced by its secret's name only.
"""

import uuid
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.constants import BINARY, STRING
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.pagination import ResultIterator

from xero_sync.tables import Table, TableName

CLEANUP_PARTITION = "pending"  # of PendingCleanupsIndex: unlinked while Xero was away, its clean-up still to do
PURGE_PARTITION = "deleting"  # of PendingCleanupsIndex: deleted, its purge not ended (requeued if it stalls)


class LinkState(StrEnum):
    LINKED = "linked"
    UNLINKED = "unlinked"
    NEEDS_RELINK = "needs_relink"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DEFERRED = "deferred"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # some resources failed: the others were imported; the last successful sync stays
    FAILED = "failed"


ACTIVE_RUN_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DEFERRED})


class RunTrigger(StrEnum):
    NIGHTLY = "nightly"
    MANUAL = "manual"
    LINK = "link"
    RELINK = "relink"
    CONSOLE = "console"


class ClientsByLinkStateIndex(GlobalSecondaryIndex["Client"]):
    """Every client but one being deleted, under its link state (`link_state_key`, a copy of `link_state`): the
    nightly fan-out reads the `linked` partition page by page and counts the others, no table scan."""

    class Meta:
        index_name = "clients-by-link-state"
        projection = AllProjection()

    link_state_key = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute(range_key=True)


class PendingCleanupsIndex(GlobalSecondaryIndex["Client"]):
    """Sparse: clients with clean-up still to do: unlinked ones whose connection or token set at Xero is still to be
    removed (CLEANUP_PARTITION), deleted ones whose purge has not ended (PURGE_PARTITION)."""

    class Meta:
        index_name = "pending-cleanups"
        projection = AllProjection()

    cleanup_partition = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute(range_key=True)


class ClientIdIndex(GlobalSecondaryIndex["Client"]):
    """Keys only: finds a client's practice from its client id alone (an operator's dispatch naming clients)."""

    class Meta:
        index_name = "client-id"
        projection = KeysOnlyProjection()

    client_id = UnicodeAttribute(hash_key=True)


class ClientsByConnectionIndex(GlobalSecondaryIndex["Client"]):
    """Keys only, sparse: the clients, in every practice, that name a Xero connection. A connection is shared by
    every practice its Xero user links the organisation for; it is removed at Xero only when none is left."""

    class Meta:
        index_name = "clients-by-connection"
        projection = KeysOnlyProjection()

    connection_id = UnicodeAttribute(hash_key=True)


class Client(Table):
    """A practice's client: one Xero organisation (tenant) and its link and sync state."""

    class Meta:
        table_name = TableName(lambda settings: settings.clients_table)

    practice_id = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    link_state = UnicodeAttribute(default=LinkState.LINKED.value)
    link_state_reason = UnicodeAttribute(null=True)
    link_state_key = UnicodeAttribute(null=True)  # the index's copy of link_state; removed while deleting
    cleanup_partition = UnicodeAttribute(null=True)
    token_set_id = UnicodeAttribute(null=True)
    connection_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    last_successful_sync_at = UTCDateTimeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    # The one sync run that may be queued or running for this client, and when that claim lapses.
    current_run_id = UnicodeAttribute(null=True)
    current_run_status = UnicodeAttribute(null=True)
    current_run_expires_at = UTCDateTimeAttribute(null=True)
    # Deleting (purge.py): from `deleting_since` on, the client is gone for every route and flow; the purge walks
    # its items in steps (`purge_step`, the step a purge message must name to act), one invocation at a time
    # (`purge_lease_expires_at`), not before `purge_not_before` (a sync that was running must have ended).
    deleting_since = UTCDateTimeAttribute(null=True)
    purge_step = NumberAttribute(null=True)
    purge_lease_expires_at = UTCDateTimeAttribute(null=True)
    purge_not_before = UTCDateTimeAttribute(null=True)
    # The last full sync asked for through the API: another is refused until FULL_SYNC_PERIOD_SECONDS after it.
    last_full_sync_requested_at = UTCDateTimeAttribute(null=True)

    by_link_state = ClientsByLinkStateIndex()
    pending_cleanups = PendingCleanupsIndex()
    by_client_id = ClientIdIndex()
    by_connection = ClientsByConnectionIndex()

    @staticmethod
    def link_state_actions(state: LinkState, reason: str | None) -> list[Action]:
        """Moves a client to a link state (and its partition of the link-state index), with the reason shown."""
        return [
            Client.link_state.set(state.value),
            Client.link_state_key.set(state.value),
            Client.link_state_reason.set(reason) if reason else Client.link_state_reason.remove(),
        ]

    def has_active_run(self, now: datetime) -> bool:
        """Whether a run holds the client: one is named and its claim has not lapsed."""
        return self.current_run_id is not None and (
            self.current_run_expires_at is None or self.current_run_expires_at > now
        )


class XeroConnection(Table):
    """Who uses a Xero connection (connections.py): the clients, in every practice, that name it and are not
    unlinked, written in the transaction that links each; the removal at Xero under way, if any; and, for a day,
    that it was removed (a completion that listed it just before must not join it)."""

    class Meta:
        table_name = TableName(lambda settings: settings.xero_connections_table)

    connection_id = UnicodeAttribute(hash_key=True)
    users = UnicodeSetAttribute(null=True)  # "{practice_id}#{client_id}"
    removal_claimed_until = UTCDateTimeAttribute(null=True)
    removal_claimed_by = UnicodeAttribute(null=True)  # who removes it: its own retry may take the claim over
    removed_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)  # set when removed


def condition_failed(error: Exception) -> bool:
    """Whether a PynamoDB write failed on its condition (someone else changed the item first), not on an error."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


class TokenSetRef(Table):
    """Where a Xero token set lives (a Secrets Manager secret name) and who may refresh it now (a lease)."""

    class Meta:
        table_name = TableName(lambda settings: settings.token_sets_table)

    token_set_id = UnicodeAttribute(hash_key=True)
    practice_id = UnicodeAttribute()
    secret_name = UnicodeAttribute()
    tenant_ids = UnicodeSetAttribute(default=set)
    created_at = UTCDateTimeAttribute()
    refreshed_at = UTCDateTimeAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_expires_at = UTCDateTimeAttribute(null=True)


class OAuthState(Table):
    """A pending Xero authorisation: single use (consumed by a conditional delete), expires by TTL."""

    class Meta:
        table_name = TableName(lambda settings: settings.oauth_states_table)

    state = UnicodeAttribute(hash_key=True)
    practice_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    target_client_id = UnicodeAttribute(null=True)
    code_verifier = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class RequestWindow(Table):
    """How many mutating API requests one practice made in one fixed window (limits.py); removed by TTL after it."""

    class Meta:
        table_name = TableName(lambda settings: settings.rate_limits_table)

    window_key = UnicodeAttribute(hash_key=True)  # "{practice_id}#{window_start_epoch}"
    requests = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class SyncRun(Table):
    """One sync of one client. Run ids sort by time, so a query newest-first is the history."""

    class Meta:
        table_name = TableName(lambda settings: settings.sync_runs_table)

    client_id = UnicodeAttribute(hash_key=True)
    run_id = UnicodeAttribute(range_key=True)
    practice_id = UnicodeAttribute()
    trigger = UnicodeAttribute()
    mode = UnicodeAttribute(default="incremental")
    status = UnicodeAttribute(default=RunStatus.QUEUED.value)
    queued_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    resumes_at = UTCDateTimeAttribute(null=True)
    waiting_reason = UnicodeAttribute(null=True)  # a xero_pacing.WaitReason, while the run waits until resumes_at
    # The run's age (RUN_MAX_AGE_SECONDS, runs.outlived) counts from here if later than queued_at: the end of its
    # latest deferral to Xero's next day.
    ages_from = UTCDateTimeAttribute(null=True)
    # While running, what its worker last published (run_heartbeat.Heartbeat): resources done of total, records read
    # so far in this run, and what it waits on until when, if it waits.
    progress = MapAttribute[str, object](null=True)  # type: ignore[no-untyped-call]
    # resource -> {fetched, inserted, updated, deleted, unchanged, rejected, errors?: [why, ...]}
    counts = MapAttribute[str, object](default=dict)  # type: ignore[no-untyped-call]
    api_calls = NumberAttribute(default=0)
    rate_limited = NumberAttribute(default=0)
    waited_seconds = NumberAttribute(default=0)
    error_code = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    # Resources Xero refused without it being fatal (Journals on a plan that does not include them).
    not_entitled = UnicodeSetAttribute(null=True)
    # Resources Xero does not offer the organisation (404 or 410 on the collection), and a partial run's failed ones.
    unavailable = UnicodeSetAttribute(null=True)
    failed_resources = UnicodeSetAttribute(null=True)


class CheckpointItem(Table):
    """An item of the Checkpoints table, under the client (`client_id`) and what it is about (`resource`). The table
    holds three kinds of item, a model each (the same keys and attribute names on disk): a resource's
    PassCheckpoint (resource = its name), its RecordCount (`_count#{resource}`) and the client's PendingContacts
    (`_dependents`)."""

    class Meta:
        table_name = TableName(lambda settings: settings.checkpoints_table)

    client_id = UnicodeAttribute(hash_key=True)
    resource = UnicodeAttribute(range_key=True)
    updated_at = UTCDateTimeAttribute()


class PassCheckpoint(CheckpointItem):
    """How far a client's resource has been imported: its mark (If-Modified-Since, or for offset paging the last
    number read), its last reconciliation, and the pass in progress if any.

    A pass in progress is described by `pass_*` (its kind, its frozen If-Modified-Since and the mark that becomes
    `modified_since` when it completes) and `next_page`; a completed pass clears them."""

    modified_since = UTCDateTimeAttribute(null=True)
    journal_offset = NumberAttribute(null=True)
    next_page = NumberAttribute(null=True)
    run_id = UnicodeAttribute(null=True)
    pass_kind = UnicodeAttribute(null=True)  # "initial", "full" (reconciliation) or "incremental"
    pass_since = UTCDateTimeAttribute(null=True)
    pass_mark = UTCDateTimeAttribute(null=True)
    pass_resumed = BooleanAttribute(null=True)
    pass_rejected = BooleanAttribute(null=True)  # the pass in progress could not store some records (hostile answers)
    last_pass_whole = BooleanAttribute(null=True)  # the last completed pass re-read everything (rejects aside)
    last_pass_began = UTCDateTimeAttribute(null=True)  # when (Xero's clock) the last completed pass began
    full_synced_at = UTCDateTimeAttribute(null=True)
    # When a pass over the resource last completed (updated_at also moves on each page of a pass in progress).
    imported_at = UTCDateTimeAttribute(null=True)
    # When Xero first answered 404/410 for this resource's collection; once a later run found it so too (confirmed),
    # skipped until a full sync or reconciliation.
    unavailable_since = UTCDateTimeAttribute(null=True)
    unavailable_confirmed = BooleanAttribute(null=True)


class RecordCount(CheckpointItem):
    """`_count#{resource}`: how many records a resource has stored (record_store.py)."""

    record_count = NumberAttribute(null=True)
    count_writes_in_flight = NumberAttribute(null=True)  # writes not counted yet
    # The latest Xero UpdatedDateUTC (epoch ms) the import has written, a high-water mark: when the resource's data
    # last changed in Xero, as far as we hold it (the data API's lastChangedAt).
    latest_updated_ms = NumberAttribute(null=True)


COUNT_PREFIX = "_count#"


class PendingContacts(CheckpointItem):
    """`_dependents`: work a pass discovered for later, the contacts to re-read by IDs (their IsCustomer/IsSupplier,
    which Xero flips without a stamp), each "{ContactID}@{document's stamp, ms}"."""

    KEY = "_dependents"

    pending_contacts = UnicodeSetAttribute(null=True)


def checkpoint_items(
    client_id: str, consistent_read: bool = False
) -> Iterator[PassCheckpoint | RecordCount | PendingContacts]:
    """Every checkpoint item of a client, each as its kind's model, in one Query (the table's items are not tagged
    with their kind: the sort key tells)."""

    def as_its_kind(raw: dict[str, Any]) -> PassCheckpoint | RecordCount | PendingContacts:
        resource = str(raw["resource"]["S"])
        if resource.startswith(COUNT_PREFIX):
            return RecordCount.from_raw_data(raw)
        if resource == PendingContacts.KEY:
            return PendingContacts.from_raw_data(raw)
        return PassCheckpoint.from_raw_data(raw)

    return iter(
        ResultIterator(
            PassCheckpoint._get_connection().query,
            (client_id,),
            {"consistent_read": consistent_read},
            map_fn=as_its_kind,
        )
    )


class UuidAttribute(Attribute[str]):
    """A UUID stored as its 16 bytes rather than its 36 characters; read back in its canonical form (lower case).
    An item written when it was stored as text is still read (as that text)."""

    attr_type = BINARY

    def serialize(self, value: str) -> bytes:
        return uuid.UUID(value).bytes

    def get_value(self, value: dict[str, Any]) -> Any:
        return value[STRING] if STRING in value else super().get_value(value)

    def deserialize(self, value: bytes | str) -> str:
        return value if isinstance(value, str) else str(uuid.UUID(bytes=value))


class XeroRecord(Table):
    """One imported Xero record. Partitioned by client and resource, sorted by the record's Xero id.

    Its attributes are named in one or two letters in DynamoDB: every item carries its names, and at these record
    sizes (about 1.4 KB of JSON, a third of that as a body) the full words were 5 % of what the table stores and
    bills."""

    class Meta:
        table_name = TableName(lambda settings: settings.records_table)

    partition = UnicodeAttribute(hash_key=True, attr_name="pk")  # "{client_id}#{resource}"
    xero_id = UnicodeAttribute(range_key=True, attr_name="id")
    # Xero's UpdatedDateUTC, in epoch milliseconds as Xero sends it
    updated_ms = NumberAttribute(null=True, attr_name="u")
    status = UnicodeAttribute(null=True, attr_name="s")
    # The record's contact (Contact.ContactID, a UUID) on resources that hold one: the data API filters on it (bodies
    # are compressed, so a filter cannot look inside them).
    contact_id = UuidAttribute(null=True, attr_name="c")
    body = BinaryAttribute(legacy_encoding=False, attr_name="b")  # the record's JSON (record_bodies.py)

    @staticmethod
    def partition_key(client_id: str, resource: str) -> str:
        return f"{client_id}#{resource}"
