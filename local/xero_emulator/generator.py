"""Deterministic organisations: the same seed, size and options always give byte-identical records.

History runs up to a fixed `asOf` date (not the wall clock, which would break determinism); every generated
UpdatedDateUTC is at or before it, so later /changes (stamped with the emulator clock) are always newer.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from typing import Any

from local.xero_emulator.books import (
    ACCOUNT_CLASS,
    BASE_CURRENCY,
    CHART,
    CURRENCY_NAMES,
    DAY_MS,
    FIRST_NAMES,
    FOREIGN_RATES,
    LAST_NAMES,
    TAX_RATES,
    Books,
    Record,
    cents,
    money,
)
from local.xero_emulator.dates import day_ms, ms_date
from local.xero_emulator.store import Organisation

DEFAULT_AS_OF_MS = day_ms(2026, 6, 30)

# Per-resource counts of each size. Payments, Journals and the transfer/overpayment bank transactions follow from
# these (a paid invoice has a payment, every posted document has journals).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "years": 1,
        "Contacts": 8,
        "ContactGroups": 2,
        "Items": 5,
        "Users": 2,
        "Invoices": 16,
        "CreditNotes": 2,
        "BankTransactions": 6,
        "BankTransfers": 2,
        "ManualJournals": 3,
        "Overpayments": 1,
        "Prepayments": 1,
        "PurchaseOrders": 3,
        "Quotes": 3,
        "RepeatingInvoices": 1,
        "BatchPayments": 1,
        "LinkedTransactions": 2,
        "foreignCurrencies": 1,
    },
    "small": {
        "years": 1,
        "Contacts": 40,
        "ContactGroups": 3,
        "Items": 20,
        "Users": 3,
        "Invoices": 240,
        "CreditNotes": 12,
        "BankTransactions": 100,
        "BankTransfers": 10,
        "ManualJournals": 10,
        "Overpayments": 3,
        "Prepayments": 3,
        "PurchaseOrders": 15,
        "Quotes": 15,
        "RepeatingInvoices": 3,
        "BatchPayments": 4,
        "LinkedTransactions": 4,
        "foreignCurrencies": 2,
    },
    "medium": {
        "years": 3,
        "Contacts": 300,
        "ContactGroups": 5,
        "Items": 60,
        "Users": 4,
        "Invoices": 2000,
        "CreditNotes": 80,
        "BankTransactions": 800,
        "BankTransfers": 60,
        "ManualJournals": 60,
        "Overpayments": 15,
        "Prepayments": 15,
        "PurchaseOrders": 120,
        "Quotes": 120,
        "RepeatingInvoices": 8,
        "BatchPayments": 20,
        "LinkedTransactions": 15,
        "foreignCurrencies": 3,
    },
    "large": {
        "years": 7,
        "Contacts": 3000,
        "ContactGroups": 8,
        "Items": 300,
        "Users": 6,
        "Invoices": 45000,
        "CreditNotes": 1500,
        "BankTransactions": 20000,
        "BankTransfers": 1200,
        "ManualJournals": 900,
        "Overpayments": 150,
        "Prepayments": 150,
        "PurchaseOrders": 2500,
        "Quotes": 2500,
        "RepeatingInvoices": 25,
        "BatchPayments": 200,
        "LinkedTransactions": 100,
        "foreignCurrencies": 4,
    },
}
COUNT_KEYS = sorted({key for size in SIZES.values() for key in size})


def tenant_id_for(seed: Any, name: str, user_id: str, counts: dict[str, int], as_of_ms: int) -> str:
    """Stable tenant id: the same request always names the same organisation."""
    key = json.dumps([seed, name, user_id, counts, as_of_ms], sort_keys=True, default=str)
    return str(uuid.UUID(bytes=hashlib.sha256(key.encode()).digest()[:16], version=4))


def resolve_counts(size: str | None, overrides: dict[str, int] | None) -> dict[str, int]:
    if size is not None and size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    counts = dict(SIZES[size or "tiny"])
    for key, value in (overrides or {}).items():
        if key not in COUNT_KEYS:
            raise ValueError(f"unknown count {key!r}; known: {', '.join(COUNT_KEYS)}")
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"count {key} must be a non-negative integer")
        counts[key] = value
    counts["Contacts"] = max(counts["Contacts"], 2)
    counts["years"] = max(counts["years"], 1)
    counts["foreignCurrencies"] = min(counts["foreignCurrencies"], len(FOREIGN_RATES))
    return counts


class _Generator:
    def __init__(self, org: Organisation, seed: Any, counts: dict[str, int], as_of_ms: int) -> None:
        self.org = org
        self.rng = random.Random(f"xero-emulator:{seed}")
        self.counts = counts
        self.as_of = as_of_ms
        self.start = as_of_ms - counts["years"] * 365 * DAY_MS
        self.books = Books(org, self.rng, defer_journals=True)
        self.out: dict[str, list[tuple[Record, int]]] = {}

    def add(self, resource: str, record: Record, modified_ms: int) -> None:
        self.out.setdefault(resource, []).append((record, modified_ms))

    def store(self, resource: str) -> None:
        """Move what was built into the organisation (so the Books helpers can see it)."""
        table = self.org.table(resource)
        for record, modified in self.out.pop(resource, []):
            table.put(record, modified)

    def uuid(self) -> str:
        return self.books.uuid()

    def when(self, lo: int, hi: int) -> int:
        """A business-hours timestamp between two instants (ms)."""
        if hi <= lo:
            return lo
        return lo + self.rng.randrange(hi - lo)

    def dates(self, count: int) -> list[int]:
        """`count` document dates (midnight UTC), denser in recent years as businesses grow."""
        span_days = (self.as_of - self.start) // DAY_MS - 1
        days = sorted(int(span_days * (self.rng.random() ** 0.8)) for _ in range(count))
        return [self.start + d * DAY_MS for d in days]

    def created_at(self, date_ms: int) -> int:
        return min(date_ms + self.rng.randrange(8 * 3_600_000, 18 * 3_600_000), self.as_of)

    # --- reference data ------------------------------------------------------------------------------------------
    def reference_data(self, name: str) -> None:
        setup = self.start - 60 * DAY_MS
        c = self.counts
        org = {
            "OrganisationID": self.org.tenant_id,
            "APIKey": "",
            "Name": name,
            "LegalName": f"{name} Limited",
            "PaysTax": True,
            "Version": "NZ",
            "OrganisationType": "COMPANY",
            "BaseCurrency": BASE_CURRENCY,
            "CountryCode": "NZ",
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "RegistrationNumber": str(self.rng.randrange(1_000_000, 9_999_999)),
            "TaxNumber": "-".join(str(self.rng.randrange(100, 999)) for _ in range(3)),
            "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 3,
            "SalesTaxBasis": "INVOICE",
            "SalesTaxPeriod": "TWOMONTHS",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Inclusive",
            "PeriodLockDate": ms_date(self.start),
            "EndOfYearLockDate": ms_date(self.start),
            "CreatedDateUTC": ms_date(setup),
            "OrganisationEntityType": "COMPANY",
            "Timezone": "NEWZEALANDSTANDARDTIME",
            "ShortCode": "!" + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(5)),
            "Edition": "BUSINESS",
            "Class": "PREMIUM",
            "LineOfBusiness": "Professional services",
            "Addresses": [
                {
                    "AddressType": "STREET",
                    "AddressLine1": "1 Queen St",
                    "City": "Auckland",
                    "PostalCode": "1010",
                    "Country": "New Zealand",
                }
            ],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {
                "Bills": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
                "Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
            },
        }
        self.add("Organisation", org, setup)

        foreign = list(FOREIGN_RATES)[: c["foreignCurrencies"]]
        for code in [BASE_CURRENCY, *foreign]:
            self.add("Currencies", {"Code": code, "Description": CURRENCY_NAMES[code]}, setup)

        for tax_type, tax_name, rate, report, status, applies in TAX_RATES:
            self.add(
                "TaxRates",
                {
                    "Name": tax_name,
                    "TaxType": tax_type,
                    "ReportTaxType": report,
                    "CanApplyToAssets": applies[0],
                    "CanApplyToEquity": applies[1],
                    "CanApplyToExpenses": applies[2],
                    "CanApplyToLiabilities": applies[3],
                    "CanApplyToRevenue": applies[4],
                    "DisplayTaxRate": rate,
                    "EffectiveRate": rate,
                    "Status": status,
                    "TaxComponents": [{"Name": "GST", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
                },
                setup,
            )

        banks = [("090", "Business Bank Account", BASE_CURRENCY), ("091", "Business Savings Account", BASE_CURRENCY)]
        banks += [(f"09{2 + i}", f"{code} Account", code) for i, code in enumerate(foreign)]
        for code, acc_name, currency in banks:
            self.add("Accounts", self.account(code, acc_name, "BANK", "NONE", "", "ACTIVE", setup, currency), setup)
        for code, acc_name, acc_type, tax_type, system, status in CHART:
            updated = setup if status == "ACTIVE" else self.when(self.start, self.as_of)
            self.add("Accounts", self.account(code, acc_name, acc_type, tax_type, system, status, updated), updated)

        categories = [("Region", ["North", "South", "East", "West"]), ("Department", ["Sales", "Operations", "Admin"])]
        if c["years"] >= 3:
            categories.append(("Project (old)", ["Alpha", "Beta"]))
        for index, (cat_name, options) in enumerate(categories):
            category_id = self.uuid()
            archived_category = index == 2
            self.add(
                "TrackingCategories",
                {
                    "Name": cat_name,
                    "Status": "ARCHIVED" if archived_category else "ACTIVE",
                    "TrackingCategoryID": category_id,
                    "Options": [
                        {
                            "TrackingOptionID": self.uuid(),
                            "Name": opt,
                            "Status": "ARCHIVED"
                            if archived_category or (c["years"] >= 3 and opt == "West")
                            else "ACTIVE",
                            "HasValidationErrors": False,
                            "IsDeleted": False,
                            "IsArchived": archived_category or (c["years"] >= 3 and opt == "West"),
                            "IsActive": not (archived_category or (c["years"] >= 3 and opt == "West")),
                        }
                        for opt in options
                    ],
                },
                setup,
            )

        for index, theme in enumerate(["Standard", "Special Projects"][: 1 + (c["years"] >= 3)]):
            self.add(
                "BrandingThemes",
                {
                    "BrandingThemeID": self.uuid(),
                    "Name": theme,
                    "Type": "INVOICE",
                    "SortOrder": index,
                    "CreatedDateUTC": ms_date(setup),
                },
                setup,
            )
        roles = ["STANDARD", "FINANCIALADVISER", "READONLY", "INVOICEONLY", "STANDARD", "STANDARD"]
        for index in range(c["Users"]):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            updated = self.when(setup, self.as_of)
            self.add(
                "Users",
                {
                    "UserID": self.uuid(),
                    "EmailAddress": f"{first.lower()}.{last.lower()}@example.co.nz",
                    "FirstName": first,
                    "LastName": last,
                    "UpdatedDateUTC": ms_date(updated),
                    "IsSubscriber": index == 0,
                    "OrganisationRole": roles[index % len(roles)],
                },
                updated,
            )
        for resource in (
            "Organisation",
            "Currencies",
            "TaxRates",
            "Accounts",
            "TrackingCategories",
            "BrandingThemes",
            "Users",
        ):
            self.store(resource)
        self.books.refresh_reference_data()

    def account(
        self,
        code: str,
        name: str,
        acc_type: str,
        tax_type: str,
        system: str,
        status: str,
        updated: int,
        currency: str | None = None,
    ) -> Record:
        record: Record = {
            "AccountID": self.uuid(),
            "Code": code,
            "Name": name,
            "Status": status,
            "Type": acc_type,
            "TaxType": tax_type,
            "Class": ACCOUNT_CLASS[acc_type],
            "EnablePaymentsToAccount": False,
            "ShowInExpenseClaims": acc_type in ("OVERHEADS", "EXPENSE"),
            "BankAccountType": "BANK" if acc_type == "BANK" else "",
            "ReportingCode": "",
            "ReportingCodeName": "",
            "HasAttachments": False,
            "UpdatedDateUTC": ms_date(updated),
            "AddToWatchlist": False,
        }
        if system:
            record["SystemAccount"] = system
        if acc_type == "BANK":
            record["BankAccountNumber"] = (
                f"12-3{self.rng.randrange(100, 999)}-{self.rng.randrange(1000000, 9999999)}-00"
            )
            record["CurrencyCode"] = currency or BASE_CURRENCY
        return record

    # --- contacts and items --------------------------------------------------------------------------------------
    def masters(self) -> None:
        c = self.counts
        setup = self.start - 30 * DAY_MS
        group_ids = []
        for index in range(c["ContactGroups"]):
            name = [
                "Preferred Customers",
                "Suppliers - Monthly",
                "VIP",
                "Wholesale",
                "Retail",
                "Overseas",
                "Staff",
                "Do Not Contact",
            ][index % 8]
            group_ids.append({"ContactGroupID": self.uuid(), "Name": name, "Status": "ACTIVE", "Contacts": []})
        foreign = [code for code in self.books.currencies if code != BASE_CURRENCY]
        self.contacts: list[Record] = []
        for number in range(1, c["Contacts"] + 1):
            currency = self.rng.choice(foreign) if foreign and self.rng.random() < 0.08 else None
            contact = self.books.new_contact(number, self.when(setup - 200 * DAY_MS, setup), currency=currency)
            if group_ids and self.rng.random() < 0.3:
                group = group_ids[self.rng.randrange(len(group_ids))]
                group["Contacts"].append({"ContactID": contact["ContactID"], "Name": contact["Name"]})
                contact["ContactGroups"] = [
                    {
                        "ContactGroupID": group["ContactGroupID"],
                        "Name": group["Name"],
                        "Status": "ACTIVE",
                        "Contacts": [],
                    }
                ]
            self.contacts.append(contact)
        for group in group_ids:
            self.add("ContactGroups", group, setup)
        self.store("ContactGroups")
        for number in range(1, c["Items"] + 1):
            item = self.books.new_item(number, self.when(setup - 100 * DAY_MS, setup))
            self.add("Items", item, int(item["UpdatedDateUTC"][6:-7]))
        self.store("Items")
        self.books.refresh_reference_data()
        # Two thirds of contacts are mostly customers, a third mostly suppliers.
        split = max(1, len(self.contacts) * 2 // 3)
        self.customers, self.suppliers = self.contacts[:split], self.contacts[split:] or self.contacts[:1]
        self.contact_last_use: dict[str, int] = {}
        self.contact_roles: dict[str, set[str]] = {}

    def pick_contact(self, sales: bool, created_ms: int) -> Record:
        pool = self.customers if sales else self.suppliers
        contact = pool[min(int(len(pool) * (self.rng.random() ** 1.6)), len(pool) - 1)]
        self.contact_last_use[contact["ContactID"]] = max(
            self.contact_last_use.get(contact["ContactID"], 0), created_ms
        )
        self.contact_roles.setdefault(contact["ContactID"], set()).add("customer" if sales else "supplier")
        return contact

    # --- transactions --------------------------------------------------------------------------------------------
    def invoices(self) -> None:
        b = self.books
        self.paid_payments: list[Record] = []
        self.bills: list[Record] = []
        self.sales: list[Record] = []
        # Positions in self.out["Invoices"] of unpaid base-currency invoices, for credit-note allocations.
        self.open_invoices: dict[str, list[int]] = {"ACCREC": [], "ACCPAY": []}
        for date_ms in self.dates(self.counts["Invoices"]):
            sales = self.rng.random() < 0.65
            created = self.created_at(date_ms)
            contact = self.pick_contact(sales, created)
            age_days = (self.as_of - date_ms) // DAY_MS
            roll = self.rng.random()
            if roll < 0.03:
                status = "DELETED"
            elif roll < 0.07:
                status = "VOIDED"
            elif age_days < 45 and roll < 0.22:
                status = "DRAFT" if roll < 0.17 else "SUBMITTED"
            elif roll < 0.08:
                status = "DRAFT"
            else:
                status = "AUTHORISED"
            currency = contact.get("DefaultCurrency")
            inv = b.new_invoice("ACCREC" if sales else "ACCPAY", contact, date_ms, created, status, currency)
            modified = created
            if status in ("DELETED", "VOIDED"):
                modified = self.when(created, min(created + 20 * DAY_MS, self.as_of))
                if status == "VOIDED":
                    inv = b.void_document(inv, "InvoiceID", modified)
                else:
                    inv = dict(inv)
                    b.stamp(inv, modified, with_string=True)
            elif status == "AUTHORISED":
                pay_date = date_ms + self.rng.randrange(3, 70) * DAY_MS
                if pay_date < self.as_of - DAY_MS and self.rng.random() < 0.95:
                    total = cents(inv["Total"])
                    parts = [total] if self.rng.random() > 0.08 else [total // 2, total - total // 2]
                    if self.rng.random() < 0.05:
                        parts = [total // 3]  # part paid, still owing
                    for part in parts:
                        pay_created = self.created_at(pay_date)
                        inv, payment = b.pay_invoice(inv, part, pay_date, pay_created)
                        modified = pay_created
                        if self.rng.random() < 0.01:
                            deleted_at = self.when(pay_created, min(pay_created + 10 * DAY_MS, self.as_of))
                            payment, inv = b.delete_payment(payment, inv, deleted_at)
                            modified = deleted_at
                        self.add("Payments", payment, int(payment["UpdatedDateUTC"][6:-7]))
                        if payment["Status"] == "AUTHORISED":
                            self.paid_payments.append(payment)
                        pay_date = min(pay_date + self.rng.randrange(5, 30) * DAY_MS, self.as_of - DAY_MS)
            if status not in ("DELETED", "VOIDED") and self.rng.random() < 0.04:
                # edited later without a journal (e.g. reference changed)
                modified = self.when(modified, min(modified + 40 * DAY_MS, self.as_of))
                inv = dict(inv)
                b.stamp(inv, modified, with_string=True)
            self.add("Invoices", inv, modified)
            if inv["Status"] in ("AUTHORISED", "PAID"):
                (self.sales if sales else self.bills).append(inv)
            if inv["Status"] == "AUTHORISED" and inv["AmountDue"] > 0 and inv["CurrencyCode"] == BASE_CURRENCY:
                self.open_invoices[inv["Type"]].append(len(self.out["Invoices"]) - 1)

    def credit_notes(self) -> None:
        b = self.books
        for date_ms in self.dates(self.counts["CreditNotes"]):
            sales = self.rng.random() < 0.7
            created = self.created_at(date_ms)
            contact = self.pick_contact(sales, created)
            open_positions = self.open_invoices["ACCREC" if sales else "ACCPAY"]
            target = None
            if open_positions and self.rng.random() < 0.35:
                # Credit against an open invoice: the credit note belongs to that invoice's contact.
                target = open_positions.pop(self.rng.randrange(len(open_positions)))
                contact = next(
                    c
                    for c in self.contacts
                    if c["ContactID"] == self.out["Invoices"][target][0]["Contact"]["ContactID"]
                )
            roll = self.rng.random()
            status = (
                "AUTHORISED"
                if roll < 0.5
                else "PAID"
                if roll < 0.85
                else "VOIDED"
                if roll < 0.9
                else ("DELETED" if roll < 0.95 else "DRAFT")
            )
            first = "AUTHORISED" if status in ("PAID", "VOIDED") else status
            cn = b.new_credit_note("ACCRECCREDIT" if sales else "ACCPAYCREDIT", contact, date_ms, created, first)
            modified = created
            if target is not None and status in ("AUTHORISED", "PAID"):
                inv, inv_modified = self.out["Invoices"][target]
                amount = min(cents(cn["RemainingCredit"]), cents(inv["AmountDue"]))
                alloc_date = max(date_ms, int(inv["Date"][6:-7]))
                modified = min(max(created, inv_modified) + self.rng.randrange(1, 72) * 3_600_000, self.as_of)
                cn, inv = b.allocate_credit_note(cn, inv, amount, alloc_date, modified)
                self.out["Invoices"][target] = (inv, modified)
            elif status == "PAID":
                refund_date = min(date_ms + self.rng.randrange(1, 20) * DAY_MS, self.as_of - DAY_MS)
                modified = self.created_at(refund_date)
                cn, payment = b.refund_credit_note(cn, refund_date, modified)
                self.add("Payments", payment, modified)
            elif status == "VOIDED":
                modified = self.when(created, min(created + 15 * DAY_MS, self.as_of))
                cn = b.void_document(cn, "CreditNoteID", modified)
            self.add("CreditNotes", cn, modified)

    def bank_transactions(self) -> None:
        b = self.books
        for date_ms in self.dates(self.counts["BankTransactions"]):
            receive = self.rng.random() < 0.3
            created = self.created_at(date_ms)
            contact = self.pick_contact(receive, created)
            currency = contact.get("DefaultCurrency")
            bt = b.new_bank_transaction("RECEIVE" if receive else "SPEND", contact, date_ms, created, currency)
            modified = created
            if self.rng.random() < 0.03:
                modified = self.when(created, min(created + 10 * DAY_MS, self.as_of))
                bt = b.void_document(bt, "BankTransactionID", modified, status="DELETED", string_stamp=False)
            self.add("BankTransactions", bt, modified)
        for date_ms in self.dates(self.counts["BankTransfers"] if len(b.base_banks) >= 2 else 0):
            created = self.created_at(date_ms)
            transfer, spend, receive_leg = b.new_bank_transfer(date_ms, created)
            modified = created
            if self.rng.random() < 0.05:
                modified = self.when(created, min(created + 10 * DAY_MS, self.as_of))
                transfer = dict(transfer, Status="DELETED")
                b.reverse_journals(transfer["BankTransferID"], modified)
                spend, receive_leg = (dict(leg, Status="DELETED") for leg in (spend, receive_leg))
                for leg in (spend, receive_leg):
                    b.stamp(leg, modified)
            self.add("BankTransfers", transfer, modified)
            self.add("BankTransactions", spend, modified)
            self.add("BankTransactions", receive_leg, modified)

    def manual_journals(self) -> None:
        b = self.books
        for date_ms in self.dates(self.counts["ManualJournals"]):
            created = self.created_at(date_ms)
            roll = self.rng.random()
            status = "POSTED" if roll < 0.85 else "DRAFT" if roll < 0.9 else "VOIDED" if roll < 0.95 else "DELETED"
            first = "POSTED" if status == "VOIDED" else "DRAFT" if status == "DELETED" else status
            mj = b.new_manual_journal(date_ms, created, first)
            modified = created
            if status in ("VOIDED", "DELETED"):
                modified = self.when(created, min(created + 30 * DAY_MS, self.as_of))
                mj = b.void_document(mj, "ManualJournalID", modified, status=status, string_stamp=False)
            self.add("ManualJournals", mj, modified)

    def prepayments_overpayments(self) -> None:
        b = self.books
        for kind, id_field in (("Overpayments", "OverpaymentID"), ("Prepayments", "PrepaymentID")):
            for date_ms in self.dates(self.counts[kind]):
                receive = self.rng.random() < 0.7
                created = self.created_at(date_ms)
                contact = self.pick_contact(receive, created)
                record, bt = b.new_prepayment_or_overpayment(kind, receive, contact, date_ms, created)
                modified = created
                if self.rng.random() < 0.1:
                    modified = self.when(created, min(created + 10 * DAY_MS, self.as_of))
                    record = b.void_document(record, id_field, modified)
                    bt = dict(bt, Status="VOIDED")
                    b.stamp(bt, modified)
                self.add(kind, record, modified)
                self.add("BankTransactions", bt, modified)

    def orders_and_quotes(self) -> None:
        b = self.books
        for date_ms in self.dates(self.counts["PurchaseOrders"]):
            created = self.created_at(date_ms)
            age = (self.as_of - date_ms) // DAY_MS
            roll = self.rng.random()
            if age > 60:
                status = "BILLED" if roll < 0.7 else "AUTHORISED" if roll < 0.85 else "DELETED"
            else:
                status = "DRAFT" if roll < 0.3 else "SUBMITTED" if roll < 0.45 else "AUTHORISED"
            po = b.new_purchase_order(self.pick_contact(False, created), date_ms, created, status)
            modified = created
            if status in ("BILLED", "DELETED"):
                modified = self.when(created, min(created + 30 * DAY_MS, self.as_of))
                po = dict(po)
                b.stamp(po, modified)
            self.add("PurchaseOrders", po, modified)
        for date_ms in self.dates(self.counts["Quotes"]):
            created = self.created_at(date_ms)
            age = (self.as_of - date_ms) // DAY_MS
            roll = self.rng.random()
            if age > 45:
                status = (
                    "INVOICED"
                    if roll < 0.5
                    else "DECLINED"
                    if roll < 0.7
                    else "ACCEPTED"
                    if roll < 0.85
                    else ("DELETED")
                )
            else:
                status = "DRAFT" if roll < 0.4 else "SENT"
            quote = b.new_quote(self.pick_contact(True, created), date_ms, created, status)
            modified = created
            if status not in ("DRAFT", "SENT"):
                modified = self.when(created, min(created + 20 * DAY_MS, self.as_of))
                quote = dict(quote)
                b.stamp(quote, modified)
            self.add("Quotes", quote, modified)

    def repeating_invoices(self) -> None:
        b = self.books
        for index in range(self.counts["RepeatingInvoices"]):
            contact = self.customers[index % len(self.customers)]
            start = self.start + self.rng.randrange(0, 200) * DAY_MS
            lines, subtotal, tax = b.line_items("sales", 1, "Exclusive")
            rid = self.uuid()
            status = "AUTHORISED" if index % 4 != 3 else "DRAFT"
            next_ms = start
            while next_ms <= self.as_of:
                next_ms += 30 * DAY_MS
            self.add(
                "RepeatingInvoices",
                {
                    "Type": "ACCREC",
                    "Contact": b.contact_ref(contact),
                    "Schedule": {
                        "Period": 1,
                        "Unit": "MONTHLY",
                        "DueDate": 20,
                        "DueDateType": "OFFOLLOWINGMONTH",
                        "StartDate": ms_date(start),
                        "NextScheduledDate": ms_date(next_ms),
                    },
                    "LineItems": lines,
                    "LineAmountTypes": "Exclusive",
                    "Reference": "Monthly retainer",
                    "BrandingThemeID": next(iter(self.org.table("BrandingThemes").records)),
                    "CurrencyCode": BASE_CURRENCY,
                    "Status": status,
                    "SubTotal": money(subtotal),
                    "TotalTax": money(tax),
                    "Total": money(subtotal + tax),
                    "RepeatingInvoiceID": rid,
                    "ID": rid,
                    "HasAttachments": False,
                    "ApprovedForSending": False,
                    "SendCopy": False,
                    "MarkAsSent": status == "AUTHORISED",
                    "IncludePDF": False,
                },
                start,
            )

    def batch_payments(self) -> None:
        """Group same-day bill payments from one bank account into batches, as a supplier payment run does."""
        groups: dict[tuple[str, str], list[Record]] = {}
        for payment in self.paid_payments:
            if payment["PaymentType"] == "ACCPAYPAYMENT":
                groups.setdefault((payment["Date"], payment["Account"]["AccountID"]), []).append(payment)
        candidates = [g for g in groups.values() if len(g) >= 2][: self.counts["BatchPayments"]]
        batched: dict[str, str] = {}
        for group in candidates:
            batch_id = self.uuid()
            updated = max(int(p["UpdatedDateUTC"][6:-7]) for p in group)
            total = sum(cents(p["Amount"]) for p in group)
            self.add(
                "BatchPayments",
                {
                    "Account": {"AccountID": group[0]["Account"]["AccountID"]},
                    "Reference": "Supplier payment run",
                    "BatchPaymentID": batch_id,
                    "Date": group[0]["Date"],
                    "Type": "PAYBATCH",
                    "Status": "AUTHORISED",
                    "TotalAmount": money(total),
                    "Amount": money(total),
                    "UpdatedDateUTC": ms_date(updated),
                    "IsReconciled": True,
                    "Payments": [
                        {
                            "PaymentID": p["PaymentID"],
                            "Amount": p["Amount"],
                            "Reference": p["Reference"],
                            "Invoice": {
                                "InvoiceID": p["Invoice"]["InvoiceID"],
                                "InvoiceNumber": p["Invoice"]["InvoiceNumber"],
                                "LineItems": [],
                                "Payments": [],
                                "CreditNotes": [],
                                "Prepayments": [],
                                "Overpayments": [],
                            },
                        }
                        for p in group
                    ],
                },
                updated,
            )
            for p in group:
                batched[p["PaymentID"]] = batch_id
        if batched:
            self.out["Payments"] = [
                (dict(p, BatchPaymentID=batched[p["PaymentID"]]) if p["PaymentID"] in batched else p, m)
                for p, m in self.out["Payments"]
            ]

    def linked_transactions(self) -> None:
        sales_of: dict[str, list[Record]] = {}  # by contact, in order: one look-up per link, not a scan of every sale
        for sale in self.sales:
            sales_of.setdefault(sale["Contact"]["ContactID"], []).append(sale)
        for index in range(min(self.counts["LinkedTransactions"], len(self.bills))):
            bill = self.bills[(index * 7919) % len(self.bills)]
            if not bill["LineItems"]:
                continue
            line = bill["LineItems"][0]
            customer = self.customers[index % len(self.customers)]
            bill_created = int(bill["UpdatedDateUTC"][6:-7])
            record: Record = {
                "LinkedTransactionID": self.uuid(),
                "SourceTransactionID": bill["InvoiceID"],
                "SourceLineItemID": line["LineItemID"],
                "ContactID": customer["ContactID"],
                "Status": "APPROVED",
                "Type": "BILLABLEEXPENSE",
                "SourceTransactionTypeCode": "ACCPAY",
            }
            updated = bill_created
            targets = [s for s in sales_of.get(customer["ContactID"], []) if s["Date"] > bill["Date"]]
            if targets and index % 2 == 0:
                target = targets[0]
                record["TargetTransactionID"] = target["InvoiceID"]
                record["TargetLineItemID"] = target["LineItems"][0]["LineItemID"]
                record["Status"] = "BILLED"
                updated = max(updated, int(target["UpdatedDateUTC"][6:-7]))
            record["UpdatedDateUTC"] = ms_date(updated)
            self.add("LinkedTransactions", record, updated)

    def finish_contacts(self) -> None:
        """IsCustomer/IsSupplier follow the contact's transactions; some unused-lately contacts get archived."""
        archive_share = 0.08 if self.counts["years"] >= 3 else 0.1
        for contact in self.contacts:
            roles = self.contact_roles.get(contact["ContactID"], set())
            contact["IsCustomer"] = "customer" in roles
            contact["IsSupplier"] = "supplier" in roles
            modified = int(contact["UpdatedDateUTC"][6:-7])
            if self.rng.random() < archive_share:
                last = self.contact_last_use.get(contact["ContactID"], modified)
                modified = self.when(last, min(last + 90 * DAY_MS, self.as_of))
                contact["ContactStatus"] = "ARCHIVED"
                contact["UpdatedDateUTC"] = ms_date(modified)
            elif self.rng.random() < 0.1:
                modified = self.when(modified, self.as_of)
                contact["UpdatedDateUTC"] = ms_date(modified)
            self.add("Contacts", contact, modified)
        self.store("Contacts")

    def run(self, name: str) -> None:
        self.reference_data(name)
        self.masters()
        self.invoices()
        self.credit_notes()
        self.bank_transactions()
        self.manual_journals()
        self.prepayments_overpayments()
        self.orders_and_quotes()
        self.repeating_invoices()
        self.batch_payments()
        self.linked_transactions()
        self.finish_contacts()
        for resource in list(self.out):
            # Creation order: what Xero lists first was made first.
            self.out[resource].sort(key=lambda pair: _created_key(pair[0]))
            self.store(resource)
        self.books.flush_journals()


def _created_key(record: Record) -> str:
    return str(record.get("Date") or record.get("CreatedDateUTC") or record.get("UpdatedDateUTC") or "")


def generate(org: Organisation, *, seed: Any, counts: dict[str, int], as_of_ms: int, name: str) -> None:
    """Fill an empty organisation."""
    _Generator(org, seed, counts, as_of_ms).run(name)
