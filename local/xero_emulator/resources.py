"""Declarative description of every Accounting API resource the emulator serves, as Xero's spec defines it.

Sources: the GET operations of xero_accounting.yaml (parameters per endpoint) and the facts file §3.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    name: str  # URL segment and the plural key of the response envelope
    id_field: str
    # Other keys Xero accepts in place of the id on GET /{Resource}/{key} (e.g. InvoiceNumber).
    alt_keys: tuple[str, ...] = ()
    ims: bool = False  # honours If-Modified-Since
    paged: bool = False  # takes `page` (100 per page)
    page_size: bool = False  # takes `pageSize` (up to 1000) and returns the `pagination` object
    where: bool = True
    order: bool = True
    single: bool = True  # has GET /{Resource}/{id}
    # Keys Xero leaves out of records on un-paged list calls ("no line details are returned").
    unpaged_omits: tuple[str, ...] = ()
    # Simple query filters: query parameter -> (record field, is a comma-separated list)
    filters: dict[str, tuple[str, bool]] = field(default_factory=dict)
    date_filters: dict[str, tuple[str, str]] = field(default_factory=dict)  # param -> (field, ">=" or "<=")
    envelope_key: str | None = None  # Organisation answers with "Organisations"
    search_fields: tuple[str, ...] = ()  # what `searchTerm` looks in (case-insensitive "contains")

    @property
    def key(self) -> str:
        return self.envelope_key or self.name


_LINES = ("LineItems",)

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in [
        Resource(
            "Organisation", "OrganisationID", where=False, order=False, single=False, envelope_key="Organisations"
        ),
        Resource("Accounts", "AccountID", ims=True),
        Resource(
            "Contacts",
            "ContactID",
            alt_keys=("ContactNumber",),
            ims=True,
            paged=True,
            page_size=True,
            filters={"IDs": ("ContactID", True)},
            search_fields=("Name", "FirstName", "LastName", "ContactNumber", "CompanyNumber", "EmailAddress"),
        ),
        Resource("ContactGroups", "ContactGroupID"),
        Resource(
            "Invoices",
            "InvoiceID",
            alt_keys=("InvoiceNumber",),
            ims=True,
            paged=True,
            page_size=True,
            unpaged_omits=_LINES,
            filters={
                "IDs": ("InvoiceID", True),
                "InvoiceNumbers": ("InvoiceNumber", True),
                "ContactIDs": ("Contact.ContactID", True),
                "Statuses": ("Status", True),
            },
            search_fields=("InvoiceNumber", "Reference"),
        ),
        Resource(
            "CreditNotes",
            "CreditNoteID",
            alt_keys=("CreditNoteNumber",),
            ims=True,
            paged=True,
            page_size=True,
            unpaged_omits=_LINES,
        ),
        Resource("Payments", "PaymentID", ims=True, paged=True, page_size=True),
        Resource("BankTransactions", "BankTransactionID", ims=True, paged=True, page_size=True, unpaged_omits=_LINES),
        Resource("BankTransfers", "BankTransferID", ims=True),
        Resource(
            "ManualJournals", "ManualJournalID", ims=True, paged=True, page_size=True, unpaged_omits=("JournalLines",)
        ),
        Resource("Journals", "JournalID", alt_keys=("JournalNumber",), ims=True, where=False, order=False),
        Resource("Items", "ItemID", alt_keys=("Code",), ims=True),
        Resource("TaxRates", "TaxType", single=True),
        Resource("TrackingCategories", "TrackingCategoryID"),
        Resource(
            "Overpayments",
            "OverpaymentID",
            ims=True,
            paged=True,
            page_size=True,
            unpaged_omits=_LINES,
            filters={"References": ("Reference", True)},
        ),
        Resource(
            "Prepayments",
            "PrepaymentID",
            ims=True,
            paged=True,
            page_size=True,
            unpaged_omits=_LINES,
            filters={"InvoiceNumbers": ("InvoiceNumber", True)},
        ),
        Resource(
            "PurchaseOrders",
            "PurchaseOrderID",
            alt_keys=("PurchaseOrderNumber",),
            ims=True,
            paged=True,
            page_size=True,
            where=False,
            filters={"Status": ("Status", False)},
            date_filters={"DateFrom": ("Date", ">="), "DateTo": ("Date", "<=")},
        ),
        Resource(
            "Quotes",
            "QuoteID",
            ims=True,
            paged=True,
            where=False,
            unpaged_omits=_LINES,
            filters={
                "ContactID": ("Contact.ContactID", False),
                "Status": ("Status", False),
                "QuoteNumber": ("QuoteNumber", False),
            },
            date_filters={
                "DateFrom": ("Date", ">="),
                "DateTo": ("Date", "<="),
                "ExpiryDateFrom": ("ExpiryDate", ">="),
                "ExpiryDateTo": ("ExpiryDate", "<="),
            },
        ),
        Resource("Currencies", "Code", single=False),
        Resource("Users", "UserID", ims=True),
        Resource("BatchPayments", "BatchPaymentID", ims=True),
        Resource("BrandingThemes", "BrandingThemeID", where=False, order=False),
        Resource("RepeatingInvoices", "RepeatingInvoiceID"),
        Resource(
            "LinkedTransactions",
            "LinkedTransactionID",
            paged=True,
            where=False,
            order=False,
            filters={
                "LinkedTransactionID": ("LinkedTransactionID", False),
                "SourceTransactionID": ("SourceTransactionID", False),
                "ContactID": ("ContactID", False),
                "Status": ("Status", False),
                "TargetTransactionID": ("TargetTransactionID", False),
            },
        ),
    ]
}

# Lower-case lookup: Xero's paths are case-insensitive (the SDKs and docs mix /connections and /Connections).
# Xero also answers the plural /Organisations (what pyxero and Singer's tap-xero call) as /Organisation.
RESOURCES_BY_LOWER = {name.lower(): r for name, r in RESOURCES.items()} | {"organisations": RESOURCES["Organisation"]}

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
JOURNALS_PER_CALL = 100

# Which scopes let a token read each resource (broad scopes, their .read forms and the 2026 granular scopes).
_SETTINGS = ("accounting.settings", "accounting.settings.read")
_CONTACTS = ("accounting.contacts", "accounting.contacts.read")
_TRANSACTIONS = ("accounting.transactions", "accounting.transactions.read")


def _granular(name: str) -> tuple[str, ...]:
    return (f"accounting.{name}", f"accounting.{name}.read")


READ_SCOPES: dict[str, tuple[str, ...]] = {
    "Organisation": _SETTINGS,
    "Accounts": _SETTINGS,
    "TaxRates": _SETTINGS,
    "TrackingCategories": _SETTINGS,
    "Currencies": _SETTINGS,
    "Users": _SETTINGS,
    "BrandingThemes": _SETTINGS,
    "Items": _SETTINGS + _TRANSACTIONS + _granular("invoices"),
    "Contacts": _CONTACTS,
    "ContactGroups": _CONTACTS,
    "Invoices": _TRANSACTIONS + _granular("invoices"),
    "CreditNotes": _TRANSACTIONS + _granular("invoices"),
    "Quotes": _TRANSACTIONS + _granular("invoices"),
    "PurchaseOrders": _TRANSACTIONS + _granular("invoices"),
    "RepeatingInvoices": _TRANSACTIONS + _granular("invoices"),
    "LinkedTransactions": _TRANSACTIONS + _granular("invoices"),
    "Payments": _TRANSACTIONS + _granular("payments"),
    "BatchPayments": _TRANSACTIONS + _granular("payments"),
    "Overpayments": _TRANSACTIONS + _granular("payments"),
    "Prepayments": _TRANSACTIONS + _granular("payments"),
    "BankTransactions": _TRANSACTIONS + _granular("banktransactions"),
    "BankTransfers": _TRANSACTIONS + _granular("banktransactions"),
    "ManualJournals": _TRANSACTIONS + _granular("manualjournals"),
    "Journals": ("accounting.journals.read",),
}
