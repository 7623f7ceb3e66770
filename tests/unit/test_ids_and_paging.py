from datetime import UTC, datetime, timedelta

import pytest

from xero_sync.errors import InvalidCursor
from xero_sync.ids import CLIENT_ID_PATTERN, RUN_ID_PATTERN, client_id_for, is_run_id, new_run_id
from xero_sync.paging import decode_cursor, encode_cursor


def test_a_client_id_is_one_per_organisation_per_practice():
    assert client_id_for("practice-a", "tenant-1") == client_id_for("practice-a", "tenant-1")
    assert client_id_for("practice-a", "tenant-1") != client_id_for("practice-b", "tenant-1")
    assert client_id_for("practice-a", "tenant-1") != client_id_for("practice-a", "tenant-2")


def test_run_ids_sort_by_time_and_never_collide():
    start = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    ids = [new_run_id(start + timedelta(microseconds=n)) for n in (0, 1, 1, 999_999, 1_000_000)]
    assert sorted(ids[:2]) == ids[:2] and ids[3] < ids[4]
    assert len(set(ids)) == len(ids)
    assert all(is_run_id(run_id) for run_id in ids)
    assert not is_run_id("20261125T020000000000Z")


def test_a_cursor_round_trips_and_a_forged_one_is_refused():
    client_id = client_id_for("practice-a", "tenant-1")
    assert decode_cursor(encode_cursor(client_id), CLIENT_ID_PATTERN) == client_id
    for forged in ["", "!!!", encode_cursor("practice-b#someone-else"), encode_cursor(client_id + "x")]:
        with pytest.raises(InvalidCursor):
            decode_cursor(forged, CLIENT_ID_PATTERN)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(client_id), RUN_ID_PATTERN)
