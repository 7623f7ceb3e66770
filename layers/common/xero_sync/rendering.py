"""Stored records as Xero shows them now: references to other records resolved at read time.

The sync stores each record as Xero sent it. Xero embeds copies of other records in a record (an invoice names its
contact, a payment its invoice's contact, a contact its groups) and does not re-stamp the record when the copy
changes, so a stored copy can be older than the record it copies. A reader resolves each copy from the stored record
it points to, exactly and for free, at the moment it reads:
- every embedded `Contact` (with a ContactID), at any depth, and every member a contact group lists (`Contacts`),
  takes the stored contact's current value of each field it carries (its Name, and whatever else Xero echoes of the
  contact); a contact not stored is left as it is;
- a contact's `ContactGroups` lists only groups still stored, with their current fields, once the groups have been
  imported at all (a client whose groups were never read keeps what Xero sent).

One rendering, used by the data API, `export`, `verify`, the chaos checks and the benchmark's equality check. A page
of records costs the page's own read plus one BatchGetItem per 100 distinct contacts it names (and, for contacts,
one Query of the client's groups).
"""

from collections.abc import Iterable, Iterator
from typing import Any

from xero_sync.catalogue import BY_NAME, ResourceSpec
from xero_sync.record_bodies import Record
from xero_sync.record_store import RecordStore, is_key_text

CONTACTS = BY_NAME["Contacts"]
CONTACT_GROUPS = BY_NAME["ContactGroups"]


def _names_contact(value: Any) -> bool:
    # A copy whose ContactID no key can hold names no stored contact (and would make the contacts' read fail).
    return isinstance(value, dict) and is_key_text(value.get("ContactID"))


def _contact_copies(node: Any) -> Iterator[dict[str, Any]]:
    """Every embedded contact (a `Contact` object naming a ContactID, or a group's member in `Contacts`), at any
    depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Contact" and _names_contact(value):
                yield value
            elif key == "Contacts" and isinstance(value, list):
                yield from (member for member in value if _names_contact(member))
            else:
                yield from _contact_copies(value)
    elif isinstance(node, list):
        for item in node:
            yield from _contact_copies(item)


def _refresh(copy: dict[str, Any], current: Record, id_field: str, own: frozenset[str] = frozenset()) -> None:
    """The copy's fields take the current record's values, but its id and the fields that are the copy's `own`."""
    for key in copy:
        if key != id_field and key not in own and key in current:
            copy[key] = current[key]


def named_contacts(records: Iterable[Record]) -> set[str]:
    """The ContactIDs the records embed (every copy, at any depth): the contacts rendering them reads."""
    return {copy["ContactID"] for record in records for copy in _contact_copies(record)}


# A group inside a contact carries an empty member list of its own (as Xero shows it), never the group's members.
_GROUP_COPY_OWN = frozenset({"Contacts"})


class Renderer:
    """Renders one client's records; contacts and groups read once per renderer (a request, an export)."""

    def __init__(self, client_id: str, store: RecordStore | None = None) -> None:
        self.store = store or RecordStore(client_id)
        self._contacts: dict[str, Record | None] = {}
        self._groups: dict[str, Record] | None = None
        self._groups_read = False

    def render(self, spec: ResourceSpec, records: list[Record]) -> list[Record]:
        """The records as Xero shows them now (changed in place, and returned)."""
        copies = [copy for record in records for copy in _contact_copies(record)]
        if copies:
            contacts = self._stored_contacts({copy["ContactID"] for copy in copies})
            for copy in copies:
                current = contacts.get(copy["ContactID"])
                if current is not None:
                    _refresh(copy, current, CONTACTS.id_field)
        if spec.name == CONTACTS.name:
            for record in records:
                self._render_groups_of(record)
        return records

    def render_all(self, spec: ResourceSpec, records: Iterable[Record], page: int = 1000) -> Iterator[Record]:
        """`render` over a stream of records (every stored record of a resource), a page at a time in memory."""
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) == page:
                yield from self.render(spec, batch)
                batch = []
        yield from self.render(spec, batch)

    def read_contacts(self, ids: Iterable[str]) -> None:
        """Reads these contacts ahead, in as few BatchGetItems as they take: a caller rendering its records a few at
        a time names the contacts they hold first (XeroRecord.contact_id), and the renders read no more."""
        self._stored_contacts(set(ids))

    def _stored_contacts(self, ids: set[str]) -> dict[str, Record | None]:
        missing = sorted(ids - self._contacts.keys())
        if missing:
            found = self.store.bodies(CONTACTS, missing)
            self._contacts.update({rid: found.get(rid) for rid in missing})
        return {rid: self._contacts[rid] for rid in ids}

    def _render_groups_of(self, contact: Record) -> None:
        groups = contact.get("ContactGroups")
        if not isinstance(groups, list) or not groups:
            return
        stored = self._stored_groups()
        if stored is None:
            return
        kept = []
        for group in groups:
            group_id = group.get(CONTACT_GROUPS.id_field) if isinstance(group, dict) else None
            if isinstance(group_id, str) and group_id in stored:
                _refresh(group, stored[group_id], CONTACT_GROUPS.id_field, _GROUP_COPY_OWN)
                kept.append(group)
        contact["ContactGroups"] = kept

    def _stored_groups(self) -> dict[str, Record] | None:
        """The stored groups by id; None while the groups were never imported (nothing tells what vanished)."""
        if not self._groups_read:
            self._groups_read = True
            if CONTACT_GROUPS.name in self.store.counts():
                self._groups = {
                    str(group[CONTACT_GROUPS.id_field]): group for group in self.store.records(CONTACT_GROUPS)
                }
        return self._groups
