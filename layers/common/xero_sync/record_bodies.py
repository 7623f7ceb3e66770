"""A stored record's body: its JSON exactly as Xero returned it (line items inside their parent; key order kept),
compact-serialised and zlib-compressed (level 6) with a preset dictionary of its resource's shape: the property names
and enumerated values of Xero's own OpenAPI description (record_dictionaries.json, built by
scripts/record-dictionaries.py). A record is too small for zlib to learn them from itself: plain, a typical invoice
shrinks about 2.2x; with its dictionary about 2.7x (far below DynamoDB's 400 KB item limit either way, and more items
fit in one 1 KB write unit). A body names its dictionary by checksum (RFC 1950's DICTID), so bodies written plain, or
with an older dictionary, stay readable.

The record's own id is the item's sort key, so the body leaves its value out (`"InvoiceID":""`, key order kept) and
reading puts it back: ~20 bytes of random hex a record, which no dictionary can compress. A stored record never has an
empty id (record_store.py refuses those), so an empty one in a body always means "the key".

No models here: tools beside a stack (the CLI's verify) read bodies without the functions' environment.
"""

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class _Dictionaries:
    current: dict[str, bytes]  # resource -> what new bodies are compressed with
    by_id: dict[int, bytes]  # Adler-32 -> dictionary, of every version (a stored body names its own)


def _load_dictionaries() -> _Dictionaries:
    document = json.loads(Path(__file__).with_name("record_dictionaries.json").read_text())
    versions = {v: {name: text.encode() for name, text in d.items()} for v, d in document["versions"].items()}
    by_id = {zlib.adler32(d): d for dictionaries in versions.values() for d in dictionaries.values()}
    return _Dictionaries(versions[document["current"]], by_id)


_DICTIONARIES = _load_dictionaries()
_FDICT = 0x20  # RFC 1950: FLG bit 5, a preset dictionary whose Adler-32 follows in the next four bytes


def encode_body(record: Record, resource: str | None, id_field: str) -> bytes:
    """`resource` names the dictionary (None: plain zlib); `id_field` is the record's id, left out (the key has it)."""
    if isinstance(record.get(id_field), str) and record[id_field]:
        record = {**record, id_field: ""}
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates: kept as the JSON escapes Xero sent
        data = json.dumps(record, separators=(",", ":")).encode()
    dictionary = _DICTIONARIES.current.get(resource) if resource else None
    if dictionary is None:
        return zlib.compress(data, 6)
    compressor = zlib.compressobj(6, zdict=dictionary)
    return compressor.compress(data) + compressor.flush()


def decode_body(body: bytes, id_field: str, record_id: str) -> Record:
    """The record a body holds; its id (`id_field`) filled in from `record_id`, the item's key."""
    if len(body) > 6 and body[1] & _FDICT:
        dictionary_id = int.from_bytes(body[2:6], "big")
        dictionary = _DICTIONARIES.by_id.get(dictionary_id)
        if dictionary is None:
            raise ValueError(
                f"a stored record names a compression dictionary this code does not have ({dictionary_id})"
            )
        decompressor = zlib.decompressobj(zdict=dictionary)
        data = decompressor.decompress(body) + decompressor.flush()
    else:
        data = zlib.decompress(body)
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a stored record is not a JSON object")
    if value.get(id_field) == "":
        value[id_field] = record_id
    return value
