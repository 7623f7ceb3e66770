"""Realistic edits to an organisation, as its users make them in Xero between two syncs.

Every edit stamps the records it touches with the emulator clock (strictly later than any earlier stamp in the
organisation) and posts or reverses journals the way Xero does. Items and ContactGroups are hard-deleted (they vanish
from the API); everything else changes status (VOIDED, DELETED, ARCHIVED).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from local.xero_emulator.books import BASE_CURRENCY, DAY_MS, Books, Record, cents
from local.xero_emulator.dates import ms_date
from local.xero_emulator.store import Organisation

_CONTACT_HOLDERS = (
    "Invoices",
    "CreditNotes",
    "BankTransactions",
    "Overpayments",
    "Prepayments",
    "PurchaseOrders",
    "Quotes",
    "RepeatingInvoices",
)


class ChangeSimulator:
    def __init__(self, org: Organisation, seed: Any, now_ms: int) -> None:
        self.org = org
        self.rng = random.Random(f"xero-emulator-changes:{seed}")
        self.books = Books(org, self.rng)
        self.now_ms = now_ms
        self.report: dict[str, dict[str, list[str]]] = {}

    # --- helpers -------------------------------------------------------------------------------------------------
    def tick(self) -> int:
        """A fresh timestamp, strictly after every earlier change in this organisation."""
        stamp = max(self.now_ms, self.org.last_change_ms + 1)
        self.org.last_change_ms = stamp
        return stamp

    def note(self, resource: str, action: str, rid: str) -> None:
        self.report.setdefault(resource, {}).setdefault(action, []).append(rid)

    def records(self, resource: str, where: Callable[[Record], bool]) -> list[Record]:
        return [r for r in self.org.table(resource).records.values() if where(r)]

    def pick(self, resource: str, where: Callable[[Record], bool]) -> Record | None:
        # Recent records are the ones users touch most; look at the newest few hundred.
        candidates = [r for r in list(self.org.table(resource).records.values())[-400:] if where(r)]
        return self.rng.choice(candidates) if candidates else None

    def put(self, resource: str, record: Record, stamp: int) -> None:
        self.org.table(resource).put(record, stamp)

    def today(self, stamp: int) -> int:
        return stamp - stamp % DAY_MS

    def active_contact(self) -> Record | None:
        return self.pick("Contacts", lambda c: c["ContactStatus"] == "ACTIVE")

    # --- edits ---------------------------------------------------------------------------------------------------
    def create_invoice(self) -> bool:
        contact = self.active_contact()
        if contact is None:
            return False
        stamp = self.tick()
        sales = self.rng.random() < 0.65
        status = "AUTHORISED" if self.rng.random() < 0.7 else "DRAFT"
        inv = self.books.new_invoice(
            "ACCREC" if sales else "ACCPAY", contact, self.today(stamp), stamp, status, contact.get("DefaultCurrency")
        )
        self.put("Invoices", inv, stamp)
        self.note("Invoices", "created", inv["InvoiceID"])
        self._mark_role(contact, sales, stamp)
        return True

    def _mark_role(self, contact: Record, sales: bool, stamp: int) -> None:
        key = "IsCustomer" if sales else "IsSupplier"
        if not contact.get(key):
            # Xero flips IsCustomer/IsSupplier without touching UpdatedDateUTC (a documented IMS blind spot).
            updated = dict(contact, **{key: True})
            table = self.org.table("Contacts")
            table.put(updated, table.modified[contact["ContactID"]])

    def authorise_invoice(self) -> bool:
        inv = self.pick("Invoices", lambda r: r["Status"] in ("DRAFT", "SUBMITTED"))
        if inv is None:
            return False
        stamp = self.tick()
        updated = dict(inv, Status="AUTHORISED", AmountDue=inv["Total"])
        self.books.stamp(updated, stamp, with_string=True)
        self.books.post_invoice_journal(updated, stamp, int(inv["Date"][6:-7]))
        self.put("Invoices", updated, stamp)
        self.note("Invoices", "updated", inv["InvoiceID"])
        return True

    def pay_invoice(self) -> bool:
        inv = self.pick("Invoices", lambda r: r["Status"] == "AUTHORISED" and r["AmountDue"] > 0)
        if inv is None:
            return False
        stamp = self.tick()
        due = cents(inv["AmountDue"])
        amount = due if self.rng.random() < 0.85 else max(1, due // 2)
        updated, payment = self.books.pay_invoice(inv, amount, self.today(stamp), stamp)
        self.put("Invoices", updated, stamp)
        self.put("Payments", payment, stamp)
        self.note("Payments", "created", payment["PaymentID"])
        self.note("Invoices", "updated", inv["InvoiceID"])
        return True

    def void_invoice(self) -> bool:
        inv = self.pick("Invoices", lambda r: r["Status"] == "AUTHORISED" and not r["Payments"])
        if inv is None:
            return False
        stamp = self.tick()
        self.put("Invoices", self.books.void_document(inv, "InvoiceID", stamp), stamp)
        self.note("Invoices", "voided", inv["InvoiceID"])
        return True

    def delete_draft_invoice(self) -> bool:
        inv = self.pick("Invoices", lambda r: r["Status"] in ("DRAFT", "SUBMITTED"))
        if inv is None:
            return False
        stamp = self.tick()
        updated = dict(inv, Status="DELETED", AmountDue=0.0)
        self.books.stamp(updated, stamp, with_string=True)
        self.put("Invoices", updated, stamp)
        self.note("Invoices", "deleted", inv["InvoiceID"])
        return True

    def edit_invoice(self) -> bool:
        inv = self.pick("Invoices", lambda r: r["Status"] in ("DRAFT", "AUTHORISED", "SUBMITTED"))
        if inv is None:
            return False
        stamp = self.tick()
        updated = dict(inv, Reference=f"Updated {self.rng.randrange(100, 999)}")
        self.books.stamp(updated, stamp, with_string=True)
        self.put("Invoices", updated, stamp)
        self.note("Invoices", "updated", inv["InvoiceID"])
        return True

    def delete_payment(self) -> bool:
        payment = self.pick(
            "Payments", lambda p: p["Status"] == "AUTHORISED" and "Invoice" in p and not p.get("BatchPaymentID")
        )
        if payment is None:
            return False
        inv = self.org.table("Invoices").records.get(payment["Invoice"]["InvoiceID"])
        if inv is None or inv["Status"] not in ("AUTHORISED", "PAID"):
            return False
        stamp = self.tick()
        deleted, updated = self.books.delete_payment(payment, inv, stamp)
        self.put("Payments", deleted, stamp)
        self.note("Payments", "deleted", payment["PaymentID"])
        if updated is not None:
            self.put("Invoices", updated, stamp)
            self.note("Invoices", "updated", inv["InvoiceID"])
        return True

    def create_credit_note(self) -> bool:
        contact = self.active_contact()
        if contact is None:
            return False
        stamp = self.tick()
        sales = self.rng.random() < 0.7
        cn = self.books.new_credit_note(
            "ACCRECCREDIT" if sales else "ACCPAYCREDIT", contact, self.today(stamp), stamp, "AUTHORISED"
        )
        self.put("CreditNotes", cn, stamp)
        self.note("CreditNotes", "created", cn["CreditNoteID"])
        return True

    def create_contact(self) -> bool:
        stamp = self.tick()
        number = len(self.org.table("Contacts")) + 1 + self.rng.randrange(1_000_000)
        contact = self.books.new_contact(number, stamp)
        self.put("Contacts", contact, stamp)
        self.note("Contacts", "created", contact["ContactID"])
        return True

    def rename_contact(self) -> bool:
        contact = self.active_contact()
        if contact is None:
            return False
        stamp = self.tick()
        updated = dict(contact, Name=f"{contact['Name'].split(' (')[0]} (renamed {self.rng.randrange(1000)})")
        self.books.stamp(updated, stamp)
        self.put("Contacts", updated, stamp)
        self.note("Contacts", "updated", contact["ContactID"])
        self._propagate_contact_name(updated)
        return True

    def _propagate_contact_name(self, contact: Record) -> None:
        """Every record that embeds the contact shows its current name (a document's contact, a payment's invoice's
        or credit note's, a group's members); Xero does not bump their UpdatedDateUTC for it."""
        cid, name = contact["ContactID"], contact["Name"]

        def renamed(node: Any) -> Any:
            if isinstance(node, list):
                return [renamed(item) for item in node]
            if not isinstance(node, dict):
                return node
            if node.get("ContactID") == cid and "Name" in node and "ContactStatus" not in node:
                return dict(node, Name=name)  # a copy of the contact (the contact itself has its status)
            return {key: renamed(value) for key, value in node.items()}

        for resource in (*_CONTACT_HOLDERS, "Payments", "BatchPayments", "ContactGroups"):
            table = self.org.table(resource)
            for rid, record in list(table.records.items()):
                shown = renamed(record)
                if shown != record:
                    table.put(shown, table.modified[rid])

    def archive_contact(self) -> bool:
        contact = self.active_contact()
        if contact is None:
            return False
        stamp = self.tick()
        updated = dict(contact, ContactStatus="ARCHIVED")
        self.books.stamp(updated, stamp)
        self.put("Contacts", updated, stamp)
        self.note("Contacts", "archived", contact["ContactID"])
        return True

    def create_bank_transaction(self) -> bool:
        contact = self.active_contact()
        if contact is None:
            return False
        stamp = self.tick()
        bt = self.books.new_bank_transaction(
            self.rng.choice(["SPEND", "SPEND", "RECEIVE"]), contact, self.today(stamp), stamp, BASE_CURRENCY
        )
        self.put("BankTransactions", bt, stamp)
        self.note("BankTransactions", "created", bt["BankTransactionID"])
        return True

    def delete_bank_transaction(self) -> bool:
        bt = self.pick("BankTransactions", lambda r: r["Status"] == "AUTHORISED" and r["Type"] in ("SPEND", "RECEIVE"))
        if bt is None:
            return False
        stamp = self.tick()
        deleted = self.books.void_document(bt, "BankTransactionID", stamp, status="DELETED", string_stamp=False)
        self.put("BankTransactions", deleted, stamp)
        self.note("BankTransactions", "deleted", bt["BankTransactionID"])
        return True

    def delete_bank_transfer(self) -> bool:
        transfer = self.pick("BankTransfers", lambda r: r["Status"] == "AUTHORISED")
        if transfer is None:
            return False
        stamp = self.tick()
        self.books.reverse_journals(transfer["BankTransferID"], stamp)
        self.put("BankTransfers", dict(transfer, Status="DELETED"), stamp)
        self.note("BankTransfers", "deleted", transfer["BankTransferID"])
        bank_transactions = self.org.table("BankTransactions")
        for leg_id in (transfer["FromBankTransactionID"], transfer["ToBankTransactionID"]):
            leg = bank_transactions.records.get(leg_id)
            if leg is not None:
                updated = dict(leg, Status="DELETED")
                self.books.stamp(updated, stamp)
                self.put("BankTransactions", updated, stamp)
                self.note("BankTransactions", "deleted", leg_id)
        return True

    def create_manual_journal(self) -> bool:
        stamp = self.tick()
        mj = self.books.new_manual_journal(self.today(stamp), stamp, "POSTED")
        self.put("ManualJournals", mj, stamp)
        self.note("ManualJournals", "created", mj["ManualJournalID"])
        return True

    def void_manual_journal(self) -> bool:
        mj = self.pick("ManualJournals", lambda r: r["Status"] == "POSTED")
        if mj is None:
            return False
        stamp = self.tick()
        self.put("ManualJournals", self.books.void_document(mj, "ManualJournalID", stamp, string_stamp=False), stamp)
        self.note("ManualJournals", "voided", mj["ManualJournalID"])
        return True

    def create_item(self) -> bool:
        stamp = self.tick()
        number = 5000 + self.org.next_number("ITEM")
        item = self.books.new_item(number, stamp)
        self.put("Items", item, stamp)
        self.note("Items", "created", item["ItemID"])
        self.books.refresh_reference_data()
        return True

    def edit_item(self) -> bool:
        item = self.pick("Items", lambda r: True)
        if item is None:
            return False
        stamp = self.tick()
        sales = dict(item["SalesDetails"], UnitPrice=round(item["SalesDetails"]["UnitPrice"] * 1.05, 2))
        updated = dict(item, SalesDetails=sales)
        self.books.stamp(updated, stamp)
        self.put("Items", updated, stamp)
        self.note("Items", "updated", item["ItemID"])
        return True

    def delete_item(self) -> bool:
        item = self.pick("Items", lambda r: True)
        if item is None:
            return False
        self.tick()
        self.org.table("Items").remove(item["ItemID"])
        self.note("Items", "removed", item["ItemID"])
        self.books.refresh_reference_data()
        return True

    def create_contact_group(self) -> bool:
        stamp = self.tick()
        group = {
            "ContactGroupID": self.books.uuid(),
            "Name": f"Group {self.rng.randrange(100, 999)}",
            "Status": "ACTIVE",
            "Contacts": [],
        }
        self.put("ContactGroups", group, stamp)
        self.note("ContactGroups", "created", group["ContactGroupID"])
        return True

    def delete_contact_group(self) -> bool:
        group = self.pick("ContactGroups", lambda r: True)
        if group is None:
            return False
        self.tick()
        self.org.table("ContactGroups").remove(group["ContactGroupID"])
        self.note("ContactGroups", "removed", group["ContactGroupID"])
        contacts = self.org.table("Contacts")
        for member in group["Contacts"]:
            contact = contacts.records.get(member["ContactID"])
            if contact is not None:
                groups = [g for g in contact["ContactGroups"] if g["ContactGroupID"] != group["ContactGroupID"]]
                contacts.put(dict(contact, ContactGroups=groups), contacts.modified[member["ContactID"]])
        return True

    def rename_account(self) -> bool:
        account = self.pick("Accounts", lambda a: a["Status"] == "ACTIVE" and a["Type"] == "OVERHEADS")
        if account is None:
            return False
        stamp = self.tick()
        updated = dict(account, Name=f"{account['Name'].split(' [')[0]} [{self.rng.randrange(100)}]")
        self.books.stamp(updated, stamp)
        self.put("Accounts", updated, stamp)
        self.note("Accounts", "updated", account["AccountID"])
        self.books.refresh_reference_data()
        return True

    def archive_tracking_option(self) -> bool:
        table = self.org.table("TrackingCategories")
        categories = [
            c
            for c in table.records.values()
            if c["Status"] == "ACTIVE" and sum(o["Status"] == "ACTIVE" for o in c["Options"]) > 1
        ]
        if not categories:
            return False
        stamp = self.tick()
        category = self.rng.choice(categories)
        active = [o for o in category["Options"] if o["Status"] == "ACTIVE"]
        target = self.rng.choice(active)["TrackingOptionID"]
        options = [
            dict(o, Status="ARCHIVED", IsArchived=True, IsActive=False) if o["TrackingOptionID"] == target else o
            for o in category["Options"]
        ]
        table.put(dict(category, Options=options), stamp)
        self.note("TrackingCategories", "updated", category["TrackingCategoryID"])
        self.books.refresh_reference_data()
        return True

    # --- driver --------------------------------------------------------------------------------------------------
    def run(self, count: int) -> dict[str, Any]:
        edits: list[tuple[Callable[[], bool], int]] = [
            (self.create_invoice, 14),
            (self.authorise_invoice, 5),
            (self.pay_invoice, 12),
            (self.void_invoice, 3),
            (self.delete_draft_invoice, 3),
            (self.edit_invoice, 5),
            (self.delete_payment, 2),
            (self.create_credit_note, 2),
            (self.create_contact, 4),
            (self.rename_contact, 3),
            (self.archive_contact, 2),
            (self.create_bank_transaction, 8),
            (self.delete_bank_transaction, 2),
            (self.delete_bank_transfer, 1),
            (self.create_manual_journal, 2),
            (self.void_manual_journal, 1),
            (self.create_item, 2),
            (self.edit_item, 2),
            (self.delete_item, 2),
            (self.create_contact_group, 1),
            (self.delete_contact_group, 2),
            (self.rename_account, 1),
            (self.archive_tracking_option, 1),
        ]
        functions = [f for f, _ in edits]
        weights = [w for _, w in edits]
        applied = 0
        attempts = 0
        journals_before = len(self.org.journal_ids)
        while applied < count and attempts < count * 20:
            attempts += 1
            if self.rng.choices(functions, weights)[0]():
                applied += 1
        new_journals = self.org.journal_ids[journals_before:]
        if new_journals:
            self.report["Journals"] = {"created": list(new_journals)}
        return {"applied": applied, "changes": self.report, "lastChangeUTC": ms_date(self.org.last_change_ms)}
