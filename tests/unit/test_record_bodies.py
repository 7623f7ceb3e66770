"""Stored record bodies: compressed with their resource's dictionary, named by checksum, the id left to the key, and
bodies written before (plain zlib, an older dictionary, the id inside) still read back."""

import json
import zlib
from pathlib import Path

import pytest

from xero_sync import record_bodies
from xero_sync.catalogue import CATALOGUE
from xero_sync.record_bodies import _DICTIONARIES, decode_body, encode_body

VERSIONS = json.loads((Path(record_bodies.__file__).with_name("record_dictionaries.json")).read_text())["versions"]
OLDEST = VERSIONS["1"]

INVOICE = {
    "Type": "ACCREC",
    "InvoiceID": "5b96e86b-418e-48e8-8949-308c14aec278",
    "InvoiceNumber": "INV-0042",
    "Reference": "Ref 42",
    "Contact": {"ContactID": "025867f1-d741-4d6b-b1af-9ac774b59ba7", "Name": "City Agency"},
    "DateString": "2026-05-10T00:00:00",
    "Date": "/Date(1778371200000+0000)/",
    "DueDate": "/Date(1779580800000+0000)/",
    "Status": "AUTHORISED",
    "LineAmountTypes": "Exclusive",
    "LineItems": [
        {
            "LineItemID": "52208ff9-528a-4985-a9ad-b2b1d4210e38",
            "Description": "Consulting",
            "Quantity": 4.0,
            "UnitAmount": 120.0,
            "AccountCode": "200",
            "TaxType": "OUTPUT2",
            "TaxAmount": 72.0,
            "LineAmount": 480.0,
        }
    ],
    "SubTotal": 480.0,
    "TotalTax": 72.0,
    "Total": 552.0,
    "AmountDue": 552.0,
    "AmountPaid": 0.0,
    "CurrencyCode": "NZD",
    "UpdatedDateUTC": "/Date(1778412345678+0000)/",
}


INVOICE_ID = INVOICE["InvoiceID"]


def test_a_body_reads_back_exactly_and_its_dictionary_makes_it_smaller_than_plain_zlib():
    body = encode_body(INVOICE, "Invoices", "InvoiceID")
    assert decode_body(body, "InvoiceID", INVOICE_ID) == INVOICE
    assert list(decode_body(body, "InvoiceID", INVOICE_ID)) == list(INVOICE)  # key order kept
    plain = zlib.compress(json.dumps(INVOICE, separators=(",", ":")).encode(), 6)
    assert len(body) < 0.85 * len(plain)


def test_a_body_leaves_its_id_to_the_key_and_gets_it_back_from_the_key():
    body = encode_body(INVOICE, "Invoices", "InvoiceID")
    assert INVOICE_ID.encode() not in zlib.decompressobj(zdict=_DICTIONARIES.current["Invoices"]).decompress(body)
    assert decode_body(body, "InvoiceID", INVOICE_ID)["InvoiceID"] == INVOICE_ID
    # a body written with its id inside (before this format) reads back the same
    assert decode_body(encode_body(INVOICE, "Invoices", "Unrelated"), "InvoiceID", "other") == INVOICE


def test_a_body_written_before_dictionaries_plain_zlib_still_reads_back():
    plain = zlib.compress(json.dumps(INVOICE, separators=(",", ":")).encode(), 6)
    assert decode_body(plain, "InvoiceID", INVOICE_ID) == INVOICE
    assert decode_body(encode_body(INVOICE, None, "InvoiceID"), "InvoiceID", INVOICE_ID) == INVOICE


def test_a_body_written_with_an_older_dictionary_still_reads_back():
    older = _DICTIONARIES.by_id[zlib.adler32(OLDEST["Invoices"].encode())]
    assert older != _DICTIONARIES.current["Invoices"]
    compressor = zlib.compressobj(6, zdict=older)
    body = compressor.compress(json.dumps(INVOICE, separators=(",", ":")).encode()) + compressor.flush()
    assert decode_body(body, "InvoiceID", INVOICE_ID) == INVOICE


def test_a_body_naming_a_dictionary_this_code_lacks_is_refused_with_the_reason():
    compressor = zlib.compressobj(6, zdict=b'"NotOneOfOurs":')
    body = compressor.compress(json.dumps(INVOICE).encode()) + compressor.flush()
    with pytest.raises(ValueError, match="compression dictionary"):
        decode_body(body, "InvoiceID", INVOICE_ID)


def test_every_resource_has_a_dictionary_and_every_dictionary_of_every_version_has_a_checksum_of_its_own():
    assert set(_DICTIONARIES.current) == {spec.name for spec in CATALOGUE}
    assert all(zlib.adler32(d) in _DICTIONARIES.by_id for d in _DICTIONARIES.current.values())
    every = [text for version in VERSIONS.values() for text in version.values()]
    assert len({zlib.adler32(text.encode()) for text in every}) == len(set(every))
