"""The `where` / `order` mini-language Xero documents for filtering."""

from __future__ import annotations

import pytest

from local.xero_emulator.where import QueryError, compile_order, compile_where

INVOICE = {
    "Type": "ACCREC",
    "Status": "AUTHORISED",
    "AmountDue": 115.0,
    "HasAttachments": False,
    "Reference": "Job 42",
    "Date": "/Date(1704067200000+0000)/",  # 2024-01-01
    "UpdatedDateUTC": "/Date(1704110400000+0000)/",  # 2024-01-01 12:00
    "Contact": {"ContactID": "0a1b2c3d-0000-4000-8000-000000000001", "Name": "Kauri Builders"},
}


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ('Status=="AUTHORISED"', True),
        ('Status == "authorised"', True),
        ('Status!="AUTHORISED"', False),
        ('Type=="ACCREC" AND Status=="PAID"', False),
        ('Type=="ACCREC" && (Status=="PAID" || Status=="AUTHORISED")', True),
        ('Status=="PAID" OR Status=="AUTHORISED"', True),
        ("AmountDue > 100", True),
        ("AmountDue >= 115.0 AND AmountDue < 200", True),
        ("Date >= DateTime(2024, 01, 01) && Date < DateTime(2024, 12, 31)", True),
        ("UpdatedDateUTC>=DateTime(2024,01,01,12,00,01)", False),
        ("UpdatedDateUTC>DateTime(2023,12,31)", True),
        ('Contact.ContactID==Guid("0A1B2C3D-0000-4000-8000-000000000001")', True),
        ('Contact.Name.Contains("builders")', True),
        ('Contact.Name.StartsWith("Kauri")', True),
        ('Reference.EndsWith("43")', False),
        ('Contact.Name.ToLower()=="kauri builders"', True),
        ("HasAttachments==false", True),
        ("NOT HasAttachments", True),
        ("Missing==null", True),
    ],
)
def test_where_clauses(clause: str, expected: bool) -> None:
    assert compile_where(clause)(INVOICE) is expected


@pytest.mark.parametrize(
    "clause", ['Status=="PAID" AND', 'Status=="PAID', "Date>=DateTime(2024,13,01)", 'Name.Explode("x")', "(Status==1"]
)
def test_bad_where_clauses_raise(clause: str) -> None:
    with pytest.raises(QueryError):
        compile_where(clause)


def test_order_clauses() -> None:
    assert compile_order("UpdatedDateUTC DESC, Name") == [(["UpdatedDateUTC"], True), (["Name"], False)]
    with pytest.raises(QueryError):
        compile_order("Name SIDEWAYS")
