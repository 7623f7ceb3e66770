"""What the sync imports from Xero's Accounting API, declared once per resource; the engine walks this table.

Facts behind each entry: docs/reference/xero-api-facts.md, "Accounting API endpoints for an import" (paging,
If-Modified-Since, archived/deleted records):
- `pageSize` up to 1000 on nine endpoints, which also answer with a `pagination` object (page count known at once);
- `page` (100 a page, no page count) on Quotes and LinkedTransactions;
- Journals by `offset` (the last JournalNumber read), 100 a call;
- every other endpoint answers its whole list in one call.
If-Modified-Since is honoured everywhere except Organisation, ContactGroups, TaxRates, TrackingCategories,
Currencies, BrandingThemes and RepeatingInvoices: those are re-read whole and diffed. Items and ContactGroups are
hard-deleted at Xero (they vanish), so they are re-read whole too, to notice what went.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class Paging(StrEnum):
    PAGE_SIZE = "page_size"  # ?page=N&pageSize=1000, with a `pagination` object
    PAGE = "page"  # ?page=N, 100 a page, last page when fewer come back
    OFFSET = "offset"  # Journals: ?offset=<last JournalNumber>, 100 a call
    NONE = "none"  # one call answers everything


class Deletes(StrEnum):
    STATUS = "status"  # a delete is a status change (DELETED, VOIDED, ARCHIVED): stored as Xero shows it
    VANISH = "vanish"  # the record disappears from the API: removed from storage when a whole re-read lacks it


PAGE_SIZE_MAX = 1000
_SCHEMA_OF = {"Currencies": "Currency", "TrackingCategories": "TrackingCategory"}
PAGE_ROWS = 100  # `page` without pageSize, and Journals per call
# Offset paging's numbers are allotted one by one as records are posted, and listed in order: an answer's numbers rise
# from the offset asked for. Xero's own example answer skips some (1, then 9), so a gap is no fault; one wider than a
# page is not one Xero explains, and reading on from it would skip the records it jumps over.
OFFSET_GAP_MAX = PAGE_ROWS


@dataclass(frozen=True)
class ResourceSpec:
    name: str  # URL segment (also the record partition's suffix)
    id_field: str
    envelope_key: str | None = None  # the list's key in the response when it differs from the name
    paging: Paging = Paging.NONE
    ims: bool = True  # honours If-Modified-Since
    deletes: Deletes = Deletes.STATUS
    params: dict[str, str] = field(default_factory=dict)  # always sent (includeArchived, includeDeleted...)
    status_field: str = "Status"
    # What the list leaves out that only GET /{name}/{id} shows (ContactGroups' members): read for each record.
    detail_fields: tuple[str, ...] = ()
    # Records carry Contact.ContactID (the data API filters on it).
    holds_contacts: bool = False
    # A new or changed record can flip its contact's IsCustomer/IsSupplier, which Xero does without a new stamp on
    # the contact: the engine re-reads those contacts after the pass.
    flips_contact_roles: bool = False
    # The organisation's contacts: the resource those re-reads read, by IDs (one resource has it).
    contact_list: bool = False
    # Offset paging: the record field whose last value read is the next call's offset (Journals' JournalNumber).
    offset_field: str = ""
    # Records are never edited or deleted: the periodic reconciliation skips the resource (a full sync re-reads it).
    append_only: bool = False
    # Xero gates the resource by plan: a 401 with a token that works everywhere else means "not entitled".
    entitlement_gated: bool = False
    # The engine starts the longest reads first (lower first), so the pole of the tent starts at once.
    read_order: int = 10
    # Xero stamps the resource's records with UpdatedDateUTC (every If-Modified-Since resource but BankTransfers):
    # a record without one is not stored (record_store.split_storable).
    updated_stamp: bool = True

    @property
    def xero_schema(self) -> str:
        """The name of the record's schema in Xero's OpenAPI description (Invoices -> Invoice)."""
        return _SCHEMA_OF.get(self.name, self.name.removesuffix("s"))

    @property
    def detail_by_id(self) -> bool:
        return bool(self.detail_fields)

    @property
    def key(self) -> str:
        return self.envelope_key or self.name

    @property
    def page_size(self) -> int:
        return PAGE_SIZE_MAX if self.paging is Paging.PAGE_SIZE else PAGE_ROWS

    @property
    def stamped(self) -> bool:
        return self.ims and self.updated_stamp

    @property
    def incremental(self) -> bool:
        """Whether a pass may read only what changed (otherwise every pass re-reads everything and diffs)."""
        return (self.ims and self.deletes is Deletes.STATUS) or self.paging is Paging.OFFSET


CATALOGUE: tuple[ResourceSpec, ...] = (
    ResourceSpec("Organisation", "OrganisationID", envelope_key="Organisations", ims=False),
    ResourceSpec("Accounts", "AccountID"),
    ResourceSpec(
        "Contacts",
        "ContactID",
        paging=Paging.PAGE_SIZE,
        params={"includeArchived": "true"},
        status_field="ContactStatus",
        contact_list=True,
        read_order=4,
    ),
    ResourceSpec("ContactGroups", "ContactGroupID", ims=False, deletes=Deletes.VANISH, detail_fields=("Contacts",)),
    ResourceSpec(
        "Invoices", "InvoiceID", paging=Paging.PAGE_SIZE, holds_contacts=True, flips_contact_roles=True, read_order=1
    ),
    ResourceSpec("CreditNotes", "CreditNoteID", paging=Paging.PAGE_SIZE, holds_contacts=True, flips_contact_roles=True),
    ResourceSpec(
        "Payments", "PaymentID", paging=Paging.PAGE_SIZE, holds_contacts=True, flips_contact_roles=True, read_order=2
    ),
    ResourceSpec(
        "BankTransactions",
        "BankTransactionID",
        paging=Paging.PAGE_SIZE,
        holds_contacts=True,
        flips_contact_roles=True,
        read_order=3,
    ),
    ResourceSpec("BankTransfers", "BankTransferID", params={"includeDeleted": "true"}, updated_stamp=False),
    ResourceSpec("ManualJournals", "ManualJournalID", paging=Paging.PAGE_SIZE),
    ResourceSpec(
        "Journals",
        "JournalID",
        paging=Paging.OFFSET,
        ims=False,
        status_field="",
        offset_field="JournalNumber",
        append_only=True,
        entitlement_gated=True,
        read_order=0,
    ),
    ResourceSpec("Items", "ItemID", deletes=Deletes.VANISH, status_field=""),
    ResourceSpec("TaxRates", "TaxType", ims=False),
    ResourceSpec("TrackingCategories", "TrackingCategoryID", ims=False, params={"includeArchived": "true"}),
    ResourceSpec(
        "Overpayments", "OverpaymentID", paging=Paging.PAGE_SIZE, holds_contacts=True, flips_contact_roles=True
    ),
    ResourceSpec("Prepayments", "PrepaymentID", paging=Paging.PAGE_SIZE, holds_contacts=True, flips_contact_roles=True),
    ResourceSpec(
        "PurchaseOrders", "PurchaseOrderID", paging=Paging.PAGE_SIZE, holds_contacts=True, flips_contact_roles=True
    ),
    ResourceSpec("Quotes", "QuoteID", paging=Paging.PAGE, holds_contacts=True, flips_contact_roles=True),
    ResourceSpec("Currencies", "Code", ims=False, status_field=""),
    ResourceSpec("Users", "UserID", status_field=""),
    ResourceSpec("BatchPayments", "BatchPaymentID"),
    ResourceSpec("BrandingThemes", "BrandingThemeID", ims=False, status_field=""),
    ResourceSpec("RepeatingInvoices", "RepeatingInvoiceID", ims=False, holds_contacts=True),
    ResourceSpec("LinkedTransactions", "LinkedTransactionID", paging=Paging.PAGE, ims=False),
)

BY_NAME: dict[str, ResourceSpec] = {spec.name: spec for spec in CATALOGUE}
(CONTACT_LIST,) = (spec for spec in CATALOGUE if spec.contact_list)
