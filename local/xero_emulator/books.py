"""Bookkeeping rules shared by the generator and the change simulator.

Everything an organisation holds is built here so that records stay consistent with each other: invoices point at
contacts, accounts, tax rates and tracking options that exist; payments point at invoices and move their AmountDue;
every posted transaction gets journals (and voids/deletes get reversing journals), numbered in creation order.
Amounts are computed in cents and shown as 2-decimal numbers, as Xero shows them.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from local.xero_emulator.dates import iso_naive, iso_z, ms_date
from local.xero_emulator.store import Organisation

DAY_MS = 86_400_000
Record = dict[str, Any]

BASE_CURRENCY = "NZD"
# Units of foreign currency per NZD (CurrencyRate as Xero shows it on multi-currency documents).
FOREIGN_RATES = {"USD": 0.60, "AUD": 0.92, "GBP": 0.48, "EUR": 0.55}
CURRENCY_NAMES = {
    "NZD": "New Zealand Dollar",
    "USD": "United States Dollar",
    "AUD": "Australian Dollar",
    "GBP": "British Pound",
    "EUR": "Euro",
}

# (TaxType, Name, rate %, ReportTaxType, Status, applies to (assets, equity, expenses, liabilities, revenue))
TAX_RATES = [
    ("INPUT2", "GST on Expenses", 15.0, "INPUT", "ACTIVE", (True, True, True, True, False)),
    ("OUTPUT2", "GST on Income", 15.0, "OUTPUT", "ACTIVE", (True, True, False, True, True)),
    ("NONE", "No GST", 0.0, "NONE", "ACTIVE", (True, True, True, True, True)),
    ("ZERORATED", "Zero Rated", 0.0, "ZERORATEDOUTPUT", "ACTIVE", (True, True, False, True, True)),
    ("GSTONIMPORTS", "GST on Imports", 0.0, "GSTONIMPORTS", "ACTIVE", (True, False, True, False, False)),
    ("TAX001", "GST 12.5% (old)", 12.5, "OUTPUT", "ARCHIVED", (True, True, False, True, True)),
]

# (Code, Name, Type, TaxType, SystemAccount, Status)
CHART = [
    ("200", "Sales", "REVENUE", "OUTPUT2", "", "ACTIVE"),
    ("260", "Other Revenue", "REVENUE", "OUTPUT2", "", "ACTIVE"),
    ("270", "Interest Income", "REVENUE", "NONE", "", "ACTIVE"),
    ("300", "Purchases", "DIRECTCOSTS", "INPUT2", "", "ACTIVE"),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", "", "ACTIVE"),
    ("400", "Advertising", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("404", "Bank Fees", "OVERHEADS", "NONE", "", "ACTIVE"),
    ("408", "Cleaning", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("412", "Consulting & Accounting", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("420", "Entertainment", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("429", "General Expenses", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("433", "Insurance", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("445", "Light, Power, Heating", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("449", "Motor Vehicle Expenses", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("453", "Office Expenses", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("469", "Rent", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("473", "Repairs and Maintenance", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("477", "Wages and Salaries", "OVERHEADS", "NONE", "", "ACTIVE"),
    ("485", "Subscriptions", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("489", "Telephone & Internet", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("493", "Travel - National", "OVERHEADS", "INPUT2", "", "ACTIVE"),
    ("494", "Travel - International", "OVERHEADS", "NONE", "", "ACTIVE"),
    ("499", "Printing & Stationery (old)", "OVERHEADS", "INPUT2", "", "ARCHIVED"),
    ("610", "Accounts Receivable", "CURRENT", "NONE", "DEBTORS", "ACTIVE"),
    ("620", "Prepayments", "CURRENT", "NONE", "", "ACTIVE"),
    ("710", "Office Equipment", "FIXED", "INPUT2", "", "ACTIVE"),
    ("800", "Accounts Payable", "CURRLIAB", "NONE", "CREDITORS", "ACTIVE"),
    ("820", "GST", "CURRLIAB", "NONE", "GST", "ACTIVE"),
    ("877", "Tracking Transfers", "CURRLIAB", "NONE", "TRACKINGTRANSFERS", "ACTIVE"),
    ("960", "Retained Earnings", "EQUITY", "NONE", "RETAINEDEARNINGS", "ACTIVE"),
    ("970", "Owner A Funds Introduced", "EQUITY", "NONE", "", "ACTIVE"),
]
ACCOUNT_CLASS = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "INVENTORY": "ASSET",
    "PREPAYMENT": "ASSET",
    "NONCURRENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "EQUITY": "EQUITY",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "DEPRECIATN": "EXPENSE",
}
SALES_ACCOUNTS = ["200", "200", "200", "260"]
PURCHASE_ACCOUNTS = [
    "300",
    "310",
    "400",
    "408",
    "412",
    "420",
    "429",
    "433",
    "445",
    "449",
    "453",
    "469",
    "473",
    "485",
    "489",
    "493",
]
AR, AP, GST = "610", "800", "820"

FIRST_NAMES = [
    "Olivia",
    "Jack",
    "Amelia",
    "Noah",
    "Isla",
    "Leo",
    "Charlotte",
    "Oliver",
    "Mia",
    "George",
    "Ava",
    "Lucas",
    "Harper",
    "Hunter",
    "Ruby",
    "Mason",
    "Sophie",
    "Liam",
    "Ella",
    "Arlo",
]
LAST_NAMES = [
    "Smith",
    "Wilson",
    "Williams",
    "Brown",
    "Taylor",
    "Jones",
    "Singh",
    "Walker",
    "Martin",
    "Anderson",
    "Thompson",
    "Ngata",
    "Kumar",
    "Lee",
    "Chen",
    "Patel",
    "Campbell",
    "Stewart",
    "Clarke",
    "Young",
]
COMPANY_WORDS = [
    "Kauri",
    "Harbour",
    "Summit",
    "Southern",
    "Pacific",
    "Alpine",
    "Coastal",
    "Totara",
    "Rimu",
    "Kiwi",
    "Bright",
    "Urban",
    "Central",
    "Northern",
    "Silver",
    "Fern",
    "Tasman",
    "Ridge",
    "Bay",
    "Valley",
]
COMPANY_KINDS = [
    "Builders",
    "Consulting",
    "Cafe",
    "Motors",
    "Design",
    "Plumbing",
    "Electrical",
    "Traders",
    "Logistics",
    "Landscaping",
    "Dental",
    "Print",
    "Media",
    "Foods",
    "Supplies",
    "Engineering",
    "Legal",
    "Hire",
]
COMPANY_SUFFIX = ["Ltd", "Limited", "& Co", "Group", "NZ Ltd", ""]
CITIES = ["Auckland", "Wellington", "Christchurch", "Hamilton", "Tauranga", "Dunedin", "Napier", "Nelson"]
STREETS = ["Queen St", "High St", "Victoria St", "Main Rd", "Church St", "Beach Rd", "Great North Rd", "Ponsonby Rd"]
ITEM_NOUNS = [
    "Consulting hour",
    "Widget",
    "Service call",
    "Installation",
    "Maintenance plan",
    "Cable pack",
    "Sensor",
    "Licence",
    "Training session",
    "Design hour",
    "Support hour",
    "Delivery",
    "Spare part",
    "Filter",
]
EXPENSE_WORDS = [
    "Monthly subscription",
    "Office supplies",
    "Fuel",
    "Courier",
    "Power bill",
    "Phone & internet",
    "Cleaning service",
    "Insurance premium",
    "Travel",
    "Client lunch",
    "Repairs",
    "Software",
]


def cents(value: float) -> int:
    return round(value * 100)


def money(value_cents: int) -> float:
    return round(value_cents / 100, 2)


class Books:
    """Builds records for one organisation. Not thread-safe: callers hold the organisation's lock."""

    def __init__(self, org: Organisation, rng: random.Random, *, defer_journals: bool = False) -> None:
        self.org = org
        self.rng = rng
        self.defer_journals = defer_journals
        self.pending_journals: list[tuple[int, int, int, str, str, str, list[Record]]] = []
        self._journal_seq = 0
        self._pending_by_source: dict[str, list[tuple[int, int, int, str, str, str, list[Record]]]] = {}
        self.refresh_reference_data()

    # --- ids and reference data ----------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def refresh_reference_data(self) -> None:
        accounts = self.org.table("Accounts").records.values()
        self.accounts_by_code: dict[str, Record] = {a["Code"]: a for a in accounts if a.get("Code")}
        self.bank_accounts = [a for a in accounts if a["Type"] == "BANK" and a["Status"] == "ACTIVE"]
        self.base_banks = [a for a in self.bank_accounts if a.get("CurrencyCode") == BASE_CURRENCY]
        self.tax_rates = {t["TaxType"]: t for t in self.org.table("TaxRates").records.values()}
        self.tracking: list[tuple[Record, Record]] = []
        for category in self.org.table("TrackingCategories").records.values():
            if category["Status"] != "ACTIVE":
                continue
            for option in category["Options"]:
                if option["Status"] == "ACTIVE":
                    self.tracking.append((category, option))
        self.items = list(self.org.table("Items").records.values())
        self.currencies = [c["Code"] for c in self.org.table("Currencies").records.values()]

    def account(self, code: str) -> Record:
        return self.accounts_by_code[code]

    def bank_for(self, currency: str) -> Record:
        for account in self.bank_accounts:
            if account.get("CurrencyCode") == currency:
                return account
        return self.base_banks[0]

    def rate_for(self, currency: str) -> float:
        if currency == BASE_CURRENCY:
            return 1.0
        return round(FOREIGN_RATES[currency] * (1 + self.rng.uniform(-0.04, 0.04)), 6)

    # --- small shapes --------------------------------------------------------------------------------------------
    @staticmethod
    def contact_ref(contact: Record) -> Record:
        return {"ContactID": contact["ContactID"], "Name": contact["Name"], "HasValidationErrors": False}

    @staticmethod
    def account_ref(account: Record) -> Record:
        return {"AccountID": account["AccountID"], "Code": account["Code"], "Name": account["Name"]}

    @staticmethod
    def dates(record: Record, key: str, ms: int, with_string: bool = True) -> None:
        record[key] = ms_date(ms)
        if with_string:
            record[key + "String"] = iso_naive(ms)

    @staticmethod
    def stamp(record: Record, updated_ms: int, with_string: bool = False) -> None:
        record["UpdatedDateUTC"] = ms_date(updated_ms)
        if with_string:
            record["UpdatedDateUTCString"] = iso_z(updated_ms)

    @classmethod
    def mark_paid(cls, document: Record, paid_ms: int) -> None:
        """A document settled in full on that day (an invoice paid or credited, a credit note allocated or refunded)."""
        document["Status"] = "PAID"
        cls.dates(document, "FullyPaidOnDate", paid_ms, with_string=False)

    def pick_tracking(self) -> list[Record]:
        if not self.tracking or self.rng.random() < 0.5:
            return []
        chosen: dict[str, Record] = {}
        for _ in range(2):
            category, option = self.tracking[self.rng.randrange(len(self.tracking))]
            chosen[category["TrackingCategoryID"]] = {
                "Name": category["Name"],
                "Option": option["Name"],
                "TrackingCategoryID": category["TrackingCategoryID"],
                "TrackingOptionID": option["TrackingOptionID"],
            }
        return list(chosen.values())

    # --- line items ----------------------------------------------------------------------------------------------
    def line_items(self, side: str, count: int, line_amount_types: str) -> tuple[list[Record], int, int]:
        """Line items for a sales ("sales") or purchase ("purchase") document; returns (lines, subtotal, tax) cents."""
        lines: list[Record] = []
        subtotal = tax_total = 0
        for _ in range(count):
            item = self.items[self.rng.randrange(len(self.items))] if self.items and self.rng.random() < 0.4 else None
            if side == "sales":
                code = item["SalesDetails"]["AccountCode"] if item else self.rng.choice(SALES_ACCOUNTS)
                unit = cents(item["SalesDetails"]["UnitPrice"]) if item else self.rng.randrange(2_000, 250_000)
                tax_type = "OUTPUT2"
            else:
                code = item["PurchaseDetails"]["AccountCode"] if item else self.rng.choice(PURCHASE_ACCOUNTS)
                unit = cents(item["PurchaseDetails"]["UnitPrice"]) if item else self.rng.randrange(1_000, 150_000)
                tax_type = self.account(code).get("TaxType") or "INPUT2"
            if line_amount_types == "NoTax":
                tax_type = "NONE"
            quantity = self.rng.choice([1, 1, 1, 2, 3, 4, 5, 10]) if self.rng.random() < 0.9 else 1.5
            amount = round(unit * quantity)
            rate = self.tax_rates[tax_type]["EffectiveRate"] / 100 if tax_type in self.tax_rates else 0.0
            if line_amount_types == "Inclusive":
                tax = round(amount * rate / (1 + rate))
                net = amount - tax
            else:
                tax = round(amount * rate)
                net = amount
            subtotal += net
            tax_total += tax
            account = self.account(code)
            line: Record = {
                "LineItemID": self.uuid(),
                "Description": item["Description"] if item else self.rng.choice(EXPENSE_WORDS + ITEM_NOUNS),
                "Quantity": float(quantity),
                "UnitAmount": money(unit),
                "TaxType": tax_type,
                "TaxAmount": money(tax),
                "LineAmount": money(amount),
                "AccountCode": code,
                "AccountID": account["AccountID"],
                "Tracking": self.pick_tracking(),
            }
            if item:
                line["ItemCode"] = item["Code"]
                line["Item"] = {"ItemID": item["ItemID"], "Name": item["Name"], "Code": item["Code"]}
            lines.append(line)
        return lines, subtotal, tax_total

    # --- journals ------------------------------------------------------------------------------------------------
    def journal_line(
        self,
        code: str,
        net: int,
        tax: int = 0,
        tax_type: str = "NONE",
        description: str = "",
        tracking: list[Record] | None = None,
    ) -> Record:
        account = self.account(code)
        tax_rate = self.tax_rates.get(tax_type)
        return {
            "JournalLineID": self.uuid(),
            "AccountID": account["AccountID"],
            "AccountCode": code,
            "AccountType": account["Type"],
            "AccountName": account["Name"],
            "Description": description,
            "NetAmount": money(net),
            "GrossAmount": money(net + tax),
            "TaxAmount": money(tax),
            "TaxType": tax_type,
            "TaxName": tax_rate["Name"] if tax_rate else "No GST",
            "TrackingCategories": [
                {
                    "Name": t["Name"],
                    "Option": t["Option"],
                    "TrackingCategoryID": t["TrackingCategoryID"],
                    "TrackingOptionID": t["TrackingOptionID"],
                    "Options": [],
                }
                for t in (tracking or [])
            ],
        }

    def document_journal_lines(
        self, lines: list[Record], line_amount_types: str, rate: float, control: str, sign: int
    ) -> list[Record]:
        """Journal lines for a document: each line's account gets the net (sign -1 credits it), GST gets the tax,
        the control account (AR/AP/bank) the balancing gross. Amounts in base currency."""
        out: list[Record] = []
        total = 0
        tax_sum = 0
        for line in lines:
            amount = cents(line["LineAmount"])
            tax = cents(line["TaxAmount"])
            net = amount - tax if line_amount_types == "Inclusive" else amount
            net_base, tax_base = round(net / rate), round(tax / rate)
            out.append(
                self.journal_line(
                    line["AccountCode"],
                    sign * net_base,
                    sign * tax_base,
                    line["TaxType"],
                    line.get("Description", ""),
                    line.get("Tracking"),
                )
            )
            total += net_base + tax_base
            tax_sum += tax_base
        if tax_sum:
            out.append(self.journal_line(GST, sign * tax_sum, 0, "NONE", "GST"))
        out.insert(0, self.journal_line(control, -sign * total))
        return out

    @staticmethod
    def reversed_lines(lines: list[Record]) -> list[tuple[str, int, int, str, str, list[Record]]]:
        return [
            (
                line["AccountCode"],
                -cents(line["NetAmount"]),
                -cents(line["TaxAmount"]),
                line["TaxType"],
                line["Description"],
                [
                    {k: t[k] for k in ("Name", "Option", "TrackingCategoryID", "TrackingOptionID")}
                    for t in line["TrackingCategories"]
                ],
            )
            for line in lines
        ]

    def journal(
        self, created_ms: int, date_ms: int, source_type: str, source_id: str, reference: str, lines: list[Record]
    ) -> None:
        self._journal_seq += 1
        entry = (created_ms, self._journal_seq, date_ms, source_type, source_id, reference, lines)
        if self.defer_journals:
            self.pending_journals.append(entry)
            self._pending_by_source.setdefault(source_id, []).append(entry)
        else:
            self._store_journal(entry)

    def reverse_journals(self, source_id: str, created_ms: int) -> None:
        """Voiding or deleting a posted transaction adds journals that reverse its existing ones."""
        table = self.org.table("Journals")
        originals = [
            (int(j["JournalDate"][6:-7]), j["SourceType"], j.get("Reference", ""), j["JournalLines"])
            for j in (table.records[jid] for jid in self.org.journals_by_source.get(source_id, []))
        ]
        originals += [(e[2], e[3], e[5], e[6]) for e in self._pending_by_source.get(source_id, [])]
        for date_ms, source_type, reference, original_lines in originals:
            lines = [
                self.journal_line(c, n, t, tt, d, tr) for c, n, t, tt, d, tr in self.reversed_lines(original_lines)
            ]
            self.journal(created_ms, date_ms, source_type, source_id, reference, lines)

    def flush_journals(self) -> None:
        self.pending_journals.sort(key=lambda e: (e[0], e[1]))
        for entry in self.pending_journals:
            self._store_journal(entry)
        self.pending_journals.clear()
        self._pending_by_source.clear()

    def _store_journal(self, entry: tuple[int, int, int, str, str, str, list[Record]]) -> None:
        created_ms, _seq, date_ms, source_type, source_id, reference, lines = entry
        number = len(self.org.journal_ids) + 1
        journal: Record = {
            "JournalID": self.uuid(),
            "JournalDate": ms_date(date_ms),
            "JournalNumber": number,
            "CreatedDateUTC": ms_date(created_ms),
            "Reference": reference,
            "SourceID": source_id,
            "SourceType": source_type,
            "JournalLines": lines,
        }
        self.org.table("Journals").put(journal, created_ms)
        self.org.journal_ids.append(journal["JournalID"])
        self.org.journals_by_source.setdefault(source_id, []).append(journal["JournalID"])

    # --- documents -----------------------------------------------------------------------------------------------
    def new_invoice(
        self, inv_type: str, contact: Record, date_ms: int, created_ms: int, status: str, currency: str | None = None
    ) -> Record:
        currency = currency or BASE_CURRENCY
        rate = self.rate_for(currency)
        lat = self.rng.choice(["Exclusive"] * 7 + ["Inclusive"] * 2 + ["NoTax"])
        side = "sales" if inv_type == "ACCREC" else "purchase"
        lines, subtotal, tax = self.line_items(side, self.rng.choice([1, 1, 2, 2, 3, 4]), lat)
        total = subtotal + tax
        if inv_type == "ACCREC":
            number = f"INV-{self.org.next_number('INV'):05d}"
        else:
            number = f"{self.rng.choice(['', 'B', 'SI-', 'ACC'])}{self.rng.randrange(1000, 999999)}"
        due_ms = date_ms + self.rng.choice([7, 14, 20, 30]) * DAY_MS
        inv: Record = {
            "Type": inv_type,
            "InvoiceID": self.uuid(),
            "InvoiceNumber": number,
            "Reference": self.rng.choice(["", "", f"PO {self.rng.randrange(100, 9999)}", "Monthly services"]),
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "AmountDue": money(total) if status in ("AUTHORISED", "SUBMITTED", "DRAFT") else 0.0,
            "AmountPaid": 0.0,
            "AmountCredited": 0.0,
            "CurrencyRate": rate,
            "IsDiscounted": False,
            "HasAttachments": False,
            "InvoiceAddresses": [],
            "HasErrors": False,
            "Contact": self.contact_ref(contact),
            "Status": status,
            "LineAmountTypes": lat,
            "LineItems": lines,
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(total),
            "CurrencyCode": currency,
            "SentToContact": inv_type == "ACCREC" and status in ("AUTHORISED", "PAID"),
        }
        self.dates(inv, "Date", date_ms)
        self.dates(inv, "DueDate", due_ms)
        if status == "DELETED":
            inv["AmountDue"] = 0.0
        self.stamp(inv, created_ms, with_string=True)
        if status in ("AUTHORISED", "PAID", "VOIDED"):
            self.post_invoice_journal(inv, created_ms, date_ms)
        return inv

    def post_invoice_journal(self, inv: Record, created_ms: int, date_ms: int) -> None:
        sales = inv["Type"] == "ACCREC"
        lines = self.document_journal_lines(
            inv["LineItems"], inv["LineAmountTypes"], inv["CurrencyRate"], AR if sales else AP, -1 if sales else 1
        )
        self.journal(created_ms, date_ms, inv["Type"], inv["InvoiceID"], inv.get("InvoiceNumber", ""), lines)

    def pay_invoice(
        self, inv: Record, amount: int, date_ms: int, created_ms: int, bank: Record | None = None
    ) -> tuple[Record, Record]:
        """A payment against an AUTHORISED invoice; returns (updated invoice, payment)."""
        sales = inv["Type"] == "ACCREC"
        bank = bank or self.bank_for(inv["CurrencyCode"])
        rate = inv["CurrencyRate"]
        payment: Record = {
            "PaymentID": self.uuid(),
            "Amount": money(amount),
            "BankAmount": money(amount),
            "Reference": self.rng.choice(["", "Thank you", f"Ref {self.rng.randrange(1000, 99999)}", "Direct credit"]),
            "CurrencyRate": rate,
            "PaymentType": "ACCRECPAYMENT" if sales else "ACCPAYPAYMENT",
            "Status": "AUTHORISED",
            "IsReconciled": self.rng.random() < 0.85,
            "HasAccount": True,
            "HasValidationErrors": False,
            "Account": {"AccountID": bank["AccountID"], "Code": bank["Code"]},
            "Invoice": {
                "Type": inv["Type"],
                "InvoiceID": inv["InvoiceID"],
                "InvoiceNumber": inv["InvoiceNumber"],
                "Contact": inv["Contact"],
                "CurrencyCode": inv["CurrencyCode"],
                "CurrencyRate": rate,
                "Payments": [],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
                "LineItems": [],
                "IsDiscounted": False,
                "HasErrors": False,
            },
        }
        self.dates(payment, "Date", date_ms, with_string=False)
        self.stamp(payment, created_ms, with_string=True)
        base = round(amount / rate)
        if sales:
            lines = [self.journal_line(bank["Code"], base), self.journal_line(AR, -base)]
        else:
            lines = [self.journal_line(AP, base), self.journal_line(bank["Code"], -base)]
        self.journal(created_ms, date_ms, payment["PaymentType"], payment["PaymentID"], payment["Reference"], lines)

        updated = dict(inv)
        paid = cents(inv["AmountPaid"]) + amount
        due = cents(inv["Total"]) - paid - cents(inv["AmountCredited"])
        updated["AmountPaid"] = money(paid)
        updated["AmountDue"] = money(max(due, 0))
        updated["Payments"] = [
            *inv["Payments"],
            {
                "PaymentID": payment["PaymentID"],
                "Date": payment["Date"],
                "Amount": payment["Amount"],
                "Reference": payment["Reference"],
                "CurrencyRate": rate,
                "HasAccount": True,
                "HasValidationErrors": False,
            },
        ]
        if due <= 0:
            self.mark_paid(updated, date_ms)
        self.stamp(updated, created_ms, with_string=True)
        return updated, payment

    def delete_payment(self, payment: Record, inv: Record | None, when_ms: int) -> tuple[Record, Record | None]:
        """Deleting a payment: status DELETED, a reversing journal, and the invoice owes the money again."""
        deleted = dict(payment)
        deleted["Status"] = "DELETED"
        self.stamp(deleted, when_ms, with_string=True)
        self.reverse_journals(payment["PaymentID"], when_ms)
        if inv is None:
            return deleted, None
        updated = dict(inv)
        paid = cents(inv["AmountPaid"]) - cents(payment["Amount"])
        updated["AmountPaid"] = money(paid)
        updated["AmountDue"] = money(cents(inv["Total"]) - paid - cents(inv["AmountCredited"]))
        updated["Payments"] = [p for p in inv["Payments"] if p["PaymentID"] != payment["PaymentID"]]
        if inv["Status"] == "PAID":
            updated["Status"] = "AUTHORISED"
            updated.pop("FullyPaidOnDate", None)
        self.stamp(updated, when_ms, with_string=True)
        return deleted, updated

    def void_document(
        self, record: Record, id_field: str, when_ms: int, status: str = "VOIDED", string_stamp: bool = True
    ) -> Record:
        updated = dict(record)
        updated["Status"] = status
        if "AmountDue" in updated:
            updated["AmountDue"] = 0.0
        if "RemainingCredit" in updated:
            updated["RemainingCredit"] = 0.0
        self.stamp(updated, when_ms, with_string=string_stamp)
        self.reverse_journals(record[id_field], when_ms)
        return updated

    def new_credit_note(self, cn_type: str, contact: Record, date_ms: int, created_ms: int, status: str) -> Record:
        lat = "Exclusive"
        side = "sales" if cn_type == "ACCRECCREDIT" else "purchase"
        lines, subtotal, tax = self.line_items(side, self.rng.choice([1, 1, 2]), lat)
        total = subtotal + tax
        number = (
            f"CN-{self.org.next_number('CN'):05d}"
            if cn_type == "ACCRECCREDIT"
            else f"SCN-{self.rng.randrange(1000, 99999)}"
        )
        cn: Record = {
            "Type": cn_type,
            "CreditNoteID": self.uuid(),
            "CreditNoteNumber": number,
            "Reference": self.rng.choice(["", "Returned goods", "Discount", "Overcharge"]),
            "Contact": self.contact_ref(contact),
            "Status": status,
            "LineAmountTypes": lat,
            "LineItems": lines,
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(total),
            "CurrencyCode": BASE_CURRENCY,
            "CurrencyRate": 1.0,
            "RemainingCredit": money(total) if status in ("AUTHORISED", "DRAFT", "SUBMITTED") else 0.0,
            "Allocations": [],
            "Payments": [],
            "HasAttachments": False,
            "HasErrors": False,
            "SentToContact": False,
            "InvoiceAddresses": [],
        }
        self.dates(cn, "Date", date_ms)
        self.dates(cn, "DueDate", date_ms)
        self.stamp(cn, created_ms, with_string=True)
        if status in ("AUTHORISED", "PAID", "VOIDED"):
            sales = cn_type == "ACCRECCREDIT"
            jl = self.document_journal_lines(lines, lat, 1.0, AR if sales else AP, 1 if sales else -1)
            self.journal(created_ms, date_ms, cn_type, cn["CreditNoteID"], number, jl)
        return cn

    def allocate_credit_note(
        self, cn: Record, inv: Record, amount: int, date_ms: int, created_ms: int
    ) -> tuple[Record, Record]:
        """Apply credit to an open invoice of the same contact: both show the allocation, the invoice owes less.
        Both sides sit in the same control account, so Xero posts no journal for it."""
        allocation_id = self.uuid()
        updated_cn = dict(cn)
        remaining = cents(cn["RemainingCredit"]) - amount
        updated_cn["RemainingCredit"] = money(remaining)
        updated_cn["AppliedAmount"] = money(cents(cn.get("AppliedAmount", 0.0)) + amount)
        allocation: Record = {
            "AllocationID": allocation_id,
            "Amount": money(amount),
            "Date": ms_date(date_ms),
            "Invoice": {
                "InvoiceID": inv["InvoiceID"],
                "InvoiceNumber": inv["InvoiceNumber"],
                "LineItems": [],
                "Payments": [],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
            },
            "IsDeleted": False,
        }
        updated_cn["Allocations"] = [*cn["Allocations"], allocation]
        if remaining <= 0:
            self.mark_paid(updated_cn, date_ms)
        self.stamp(updated_cn, created_ms, with_string=True)
        updated_inv = dict(inv)
        credited = cents(inv["AmountCredited"]) + amount
        due = cents(inv["Total"]) - cents(inv["AmountPaid"]) - credited
        updated_inv["AmountCredited"] = money(credited)
        updated_inv["AmountDue"] = money(max(due, 0))
        updated_inv["CreditNotes"] = [
            *inv["CreditNotes"],
            {
                "CreditNoteID": cn["CreditNoteID"],
                "CreditNoteNumber": cn["CreditNoteNumber"],
                "ID": allocation_id,
                "AppliedAmount": money(amount),
                "Date": ms_date(date_ms),
                "DateString": iso_naive(date_ms),
                "Total": cn["Total"],
                "LineItems": [],
                "HasErrors": False,
            },
        ]
        if due <= 0:
            self.mark_paid(updated_inv, date_ms)
        self.stamp(updated_inv, created_ms, with_string=True)
        return updated_cn, updated_inv

    def refund_credit_note(self, cn: Record, date_ms: int, created_ms: int) -> tuple[Record, Record]:
        """Cash refund of a credit note's remaining credit (PaymentType AR/APCREDITPAYMENT)."""
        sales = cn["Type"] == "ACCRECCREDIT"
        bank = self.base_banks[0]
        amount = cents(cn["RemainingCredit"])
        payment: Record = {
            "PaymentID": self.uuid(),
            "Amount": money(amount),
            "BankAmount": money(amount),
            "Reference": "Refund",
            "CurrencyRate": 1.0,
            "PaymentType": "ARCREDITPAYMENT" if sales else "APCREDITPAYMENT",
            "Status": "AUTHORISED",
            "IsReconciled": True,
            "HasAccount": True,
            "HasValidationErrors": False,
            "Account": {"AccountID": bank["AccountID"], "Code": bank["Code"]},
            "CreditNote": {
                "Type": cn["Type"],
                "CreditNoteID": cn["CreditNoteID"],
                "CreditNoteNumber": cn["CreditNoteNumber"],
                "Contact": cn["Contact"],
                "CurrencyCode": cn["CurrencyCode"],
                "LineItems": [],
            },
        }
        self.dates(payment, "Date", date_ms, with_string=False)
        self.stamp(payment, created_ms, with_string=True)
        if sales:
            lines = [self.journal_line(AR, amount), self.journal_line(bank["Code"], -amount)]
        else:
            lines = [self.journal_line(bank["Code"], amount), self.journal_line(AP, -amount)]
        self.journal(created_ms, date_ms, payment["PaymentType"], payment["PaymentID"], "Refund", lines)
        updated = dict(cn)
        updated["RemainingCredit"] = 0.0
        self.mark_paid(updated, date_ms)
        updated["Payments"] = [
            {
                "PaymentID": payment["PaymentID"],
                "Date": payment["Date"],
                "Amount": payment["Amount"],
                "Reference": "Refund",
                "CurrencyRate": 1.0,
                "HasAccount": True,
                "HasValidationErrors": False,
            }
        ]
        self.stamp(updated, created_ms, with_string=True)
        return updated, payment

    def new_bank_transaction(
        self, bt_type: str, contact: Record, date_ms: int, created_ms: int, currency: str | None = None
    ) -> Record:
        currency = currency or BASE_CURRENCY
        bank = self.bank_for(currency)
        rate = self.rate_for(currency)
        lat = self.rng.choice(["Inclusive", "Inclusive", "Exclusive", "NoTax"])
        lines, subtotal, tax = self.line_items(
            "sales" if bt_type == "RECEIVE" else "purchase", self.rng.choice([1, 1, 1, 2]), lat
        )
        bt: Record = {
            "Type": bt_type,
            "BankTransactionID": self.uuid(),
            "Contact": self.contact_ref(contact),
            "BankAccount": self.account_ref(bank),
            "IsReconciled": self.rng.random() < 0.9,
            "Reference": self.rng.choice(["", "EFTPOS", "Card purchase", "Direct debit", "Deposit"]),
            "CurrencyCode": bank.get("CurrencyCode", BASE_CURRENCY),
            "CurrencyRate": rate,
            "Status": "AUTHORISED",
            "LineAmountTypes": lat,
            "LineItems": lines,
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(subtotal + tax),
            "HasAttachments": False,
        }
        self.dates(bt, "Date", date_ms, with_string=True)
        self.stamp(bt, created_ms)
        receive = bt_type == "RECEIVE"
        jl = self.document_journal_lines(lines, lat, rate, bank["Code"], -1 if receive else 1)
        self.journal(
            created_ms, date_ms, "CASHREC" if receive else "CASHPAID", bt["BankTransactionID"], bt["Reference"], jl
        )
        return bt

    def new_bank_transfer(self, date_ms: int, created_ms: int) -> tuple[Record, Record, Record]:
        """A transfer between two base-currency bank accounts, with the SPEND-/RECEIVE-TRANSFER bank transactions
        Xero creates alongside it."""
        source, target = self.rng.sample(self.base_banks, 2)
        amount = self.rng.randrange(10_000, 2_000_000)
        transfer_id = self.uuid()
        reconciled = self.rng.random() < 0.9
        legs = []
        for bt_type, account in (("SPEND-TRANSFER", source), ("RECEIVE-TRANSFER", target)):
            leg: Record = {
                "Type": bt_type,
                "BankTransactionID": self.uuid(),
                "BankAccount": self.account_ref(account),
                "IsReconciled": reconciled,
                "Reference": "Transfer",
                "CurrencyCode": BASE_CURRENCY,
                "CurrencyRate": 1.0,
                "Status": "AUTHORISED",
                "LineAmountTypes": "NoTax",
                "LineItems": [],
                "SubTotal": money(amount),
                "TotalTax": 0.0,
                "Total": money(amount),
                "HasAttachments": False,
            }
            self.dates(leg, "Date", date_ms, with_string=True)
            self.stamp(leg, created_ms)
            legs.append(leg)
        transfer: Record = {
            "BankTransferID": transfer_id,
            "FromBankAccount": self.account_ref(source),
            "ToBankAccount": self.account_ref(target),
            "Amount": money(amount),
            "CurrencyRate": 1.0,
            "FromBankTransactionID": legs[0]["BankTransactionID"],
            "ToBankTransactionID": legs[1]["BankTransactionID"],
            "FromIsReconciled": reconciled,
            "ToIsReconciled": reconciled,
            "Reference": "Transfer",
            "HasAttachments": False,
            "Status": "AUTHORISED",
            "CreatedDateUTC": ms_date(created_ms),
        }
        self.dates(transfer, "Date", date_ms, with_string=True)
        lines = [self.journal_line(target["Code"], amount), self.journal_line(source["Code"], -amount)]
        self.journal(created_ms, date_ms, "TRANSFER", transfer_id, "Transfer", lines)
        return transfer, legs[0], legs[1]

    def new_manual_journal(self, date_ms: int, created_ms: int, status: str) -> Record:
        amount = self.rng.randrange(5_000, 500_000)
        debit, credit = self.rng.sample(["477", "960", "970", "710", "429", "620", "260"], 2)
        narration = self.rng.choice(
            ["Depreciation", "Accrual", "Year-end adjustment", "Wages accrual", "Owner drawings", "Reclassification"]
        )
        lines = [
            {
                "LineAmount": money(amount),
                "AccountCode": debit,
                "AccountID": self.account(debit)["AccountID"],
                "Description": narration,
                "TaxType": "NONE",
                "Tracking": [],
                "TaxAmount": 0.0,
                "IsBlank": False,
            },
            {
                "LineAmount": money(-amount),
                "AccountCode": credit,
                "AccountID": self.account(credit)["AccountID"],
                "Description": narration,
                "TaxType": "NONE",
                "Tracking": [],
                "TaxAmount": 0.0,
                "IsBlank": False,
            },
        ]
        mj: Record = {
            "ManualJournalID": self.uuid(),
            "Narration": narration,
            "JournalLines": lines,
            "LineAmountTypes": "NoTax",
            "Status": status,
            "ShowOnCashBasisReports": True,
            "HasAttachments": False,
        }
        self.dates(mj, "Date", date_ms, with_string=False)
        self.stamp(mj, created_ms)
        if status in ("POSTED", "VOIDED"):
            jl = [
                self.journal_line(debit, amount, description=narration),
                self.journal_line(credit, -amount, description=narration),
            ]
            self.journal(created_ms, date_ms, "MANJOURNAL", mj["ManualJournalID"], narration, jl)
        return mj

    def new_prepayment_or_overpayment(
        self, kind: str, receive: bool, contact: Record, date_ms: int, created_ms: int
    ) -> tuple[Record, Record]:
        """An overpayment or prepayment and the bank transaction that brought the money in (or out)."""
        bank = self.base_banks[0]
        id_field = "OverpaymentID" if kind == "Overpayments" else "PrepaymentID"
        rec_type = ("RECEIVE-" if receive else "SPEND-") + ("OVERPAYMENT" if kind == "Overpayments" else "PREPAYMENT")
        if kind == "Overpayments":
            amount = self.rng.randrange(2_000, 200_000)
            control = AR if receive else AP
            lines = [
                {
                    "LineItemID": self.uuid(),
                    "Description": "Overpayment",
                    "Quantity": 1.0,
                    "UnitAmount": money(amount),
                    "TaxType": "NONE",
                    "TaxAmount": 0.0,
                    "LineAmount": money(amount),
                    "AccountCode": control,
                    "AccountID": self.account(control)["AccountID"],
                    "Tracking": [],
                }
            ]
            lat, subtotal, tax = "NoTax", amount, 0
        else:
            lat = "Inclusive"
            lines, subtotal, tax = self.line_items("sales" if receive else "purchase", 1, lat)
        total = subtotal + tax
        record: Record = {
            id_field: self.uuid(),
            "Type": rec_type,
            "Contact": self.contact_ref(contact),
            "Status": "AUTHORISED",
            "LineAmountTypes": lat,
            "LineItems": lines,
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(total),
            "CurrencyCode": BASE_CURRENCY,
            "CurrencyRate": 1.0,
            "RemainingCredit": money(total),
            "Allocations": [],
            "Payments": [],
            "HasAttachments": False,
        }
        if kind == "Overpayments":
            record["Reference"] = "Overpayment"
        else:
            record["Reference"] = "Deposit"
        self.dates(record, "Date", date_ms, with_string=True)
        self.stamp(record, created_ms, with_string=True)
        bt: Record = {
            "Type": rec_type,
            "BankTransactionID": self.uuid(),
            "Contact": self.contact_ref(contact),
            "BankAccount": self.account_ref(bank),
            "IsReconciled": True,
            "Reference": record["Reference"],
            "CurrencyCode": BASE_CURRENCY,
            "CurrencyRate": 1.0,
            "Status": "AUTHORISED",
            "LineAmountTypes": lat,
            "LineItems": lines,
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(total),
            "HasAttachments": False,
            id_field: record[id_field],
        }
        self.dates(bt, "Date", date_ms, with_string=True)
        self.stamp(bt, created_ms)
        source = ("AR" if receive else "AP") + ("OVERPAYMENT" if kind == "Overpayments" else "PREPAYMENT")
        jl = self.document_journal_lines(lines, lat, 1.0, bank["Code"], -1 if receive else 1)
        self.journal(created_ms, date_ms, source, record[id_field], record["Reference"], jl)
        return record, bt

    def new_purchase_order(self, contact: Record, date_ms: int, created_ms: int, status: str) -> Record:
        lat = "Exclusive"
        lines, subtotal, tax = self.line_items("purchase", self.rng.choice([1, 2, 3]), lat)
        po: Record = {
            "PurchaseOrderID": self.uuid(),
            "PurchaseOrderNumber": f"PO-{self.org.next_number('PO'):04d}",
            "Reference": self.rng.choice(["", "Stock", "Job 42", "Urgent"]),
            "Contact": self.contact_ref(contact),
            "LineItems": lines,
            "LineAmountTypes": lat,
            "CurrencyCode": BASE_CURRENCY,
            "CurrencyRate": 1.0,
            "Status": status,
            "SentToContact": status in ("AUTHORISED", "BILLED"),
            "DeliveryAddress": f"{self.rng.randrange(1, 300)} {self.rng.choice(STREETS)}",
            "AttentionTo": self.rng.choice(FIRST_NAMES),
            "Telephone": f"09 {self.rng.randrange(100, 999)} {self.rng.randrange(1000, 9999)}",
            "DeliveryInstructions": "",
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(subtotal + tax),
            "TotalDiscount": 0.0,
            "HasAttachments": False,
            "IsDiscounted": False,
        }
        self.dates(po, "Date", date_ms)
        self.dates(po, "DeliveryDate", date_ms + 14 * DAY_MS)
        self.stamp(po, created_ms)
        return po

    def new_quote(self, contact: Record, date_ms: int, created_ms: int, status: str) -> Record:
        lines, subtotal, tax = self.line_items("sales", self.rng.choice([1, 2, 3]), "Exclusive")
        quote: Record = {
            "QuoteID": self.uuid(),
            "QuoteNumber": f"QU-{self.org.next_number('QU'):04d}",
            "Reference": self.rng.choice(["", "Website", "Phone enquiry"]),
            "Terms": "Valid for 30 days",
            "Contact": self.contact_ref(contact),
            "LineItems": lines,
            "Status": status,
            "CurrencyCode": BASE_CURRENCY,
            "CurrencyRate": 1.0,
            "SubTotal": money(subtotal),
            "TotalTax": money(tax),
            "Total": money(subtotal + tax),
            "TotalDiscount": 0.0,
            "Title": "Quote",
            "Summary": self.rng.choice(["Supply and install", "Consulting engagement", "Maintenance"]),
            "LineAmountTypes": "EXCLUSIVE",
        }
        self.dates(quote, "Date", date_ms)
        self.dates(quote, "ExpiryDate", date_ms + 30 * DAY_MS)
        self.stamp(quote, created_ms)
        return quote

    # --- master data ---------------------------------------------------------------------------------------------
    def new_contact(self, number: int, created_ms: int, *, currency: str | None = None) -> Record:
        if self.rng.random() < 0.75:
            name = (
                f"{self.rng.choice(COMPANY_WORDS)} {self.rng.choice(COMPANY_KINDS)} {self.rng.choice(COMPANY_SUFFIX)}"
            ).strip()
        else:
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
        name = f"{name} ({number})"  # Xero requires contact names to be unique
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        city = self.rng.choice(CITIES)
        contact: Record = {
            "ContactID": self.uuid(),
            "ContactNumber": f"C{number:05d}" if self.rng.random() < 0.3 else None,
            "AccountNumber": f"A{number:05d}" if self.rng.random() < 0.3 else None,
            "ContactStatus": "ACTIVE",
            "Name": name,
            "FirstName": first,
            "LastName": last,
            "EmailAddress": f"{first.lower()}.{last.lower()}{number}@example.co.nz",
            "BankAccountDetails": "",
            "Addresses": [
                {
                    "AddressType": "POBOX",
                    "AddressLine1": f"PO Box {self.rng.randrange(100, 9999)}",
                    "City": city,
                    "Region": "",
                    "PostalCode": f"{self.rng.randrange(1000, 9999)}",
                    "Country": "New Zealand",
                },
                {
                    "AddressType": "STREET",
                    "AddressLine1": f"{self.rng.randrange(1, 400)} {self.rng.choice(STREETS)}",
                    "City": city,
                    "Region": "",
                    "PostalCode": f"{self.rng.randrange(1000, 9999)}",
                    "Country": "New Zealand",
                },
            ],
            "Phones": [
                {
                    "PhoneType": "DEFAULT",
                    "PhoneNumber": f"{self.rng.randrange(100, 999)} {self.rng.randrange(1000, 9999)}",
                    "PhoneAreaCode": "09",
                    "PhoneCountryCode": "64",
                },
                {"PhoneType": "MOBILE", "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""},
            ],
            "ContactGroups": [],
            "ContactPersons": [],
            "IsSupplier": False,
            "IsCustomer": False,
            "HasAttachments": False,
            "HasValidationErrors": False,
        }
        for key in ("ContactNumber", "AccountNumber"):
            if contact[key] is None:
                del contact[key]
        if currency and currency != BASE_CURRENCY:
            contact["DefaultCurrency"] = currency
        self.stamp(contact, created_ms)
        return contact

    def new_item(self, number: int, created_ms: int) -> Record:
        noun = self.rng.choice(ITEM_NOUNS)
        sale = self.rng.randrange(1_000, 80_000)
        cost = round(sale * self.rng.uniform(0.4, 0.8))
        item: Record = {
            "ItemID": self.uuid(),
            "Code": f"ITEM-{number:04d}",
            "Name": f"{noun} {number}",
            "Description": f"{noun} (standard)",
            "PurchaseDescription": f"{noun} - supplier cost",
            "IsSold": True,
            "IsPurchased": True,
            "IsTrackedAsInventory": False,
            "SalesDetails": {"UnitPrice": money(sale), "AccountCode": "200", "TaxType": "OUTPUT2"},
            "PurchaseDetails": {"UnitPrice": money(cost), "AccountCode": "300", "TaxType": "INPUT2"},
        }
        self.stamp(item, created_ms)
        return item
