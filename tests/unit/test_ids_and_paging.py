from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from xero_sync.deletion import PurgeMessage
from xero_sync.errors import InvalidCursor
from xero_sync.ids import (
    CLIENT_ID_PATTERN,
    MAX_PRACTICE_ID_BYTES,
    RUN_ID_PATTERN,
    client_id_for,
    is_run_id,
    new_run_id,
    practice_id_problem,
)
from xero_sync.models import RunTrigger
from xero_sync.paging import decode_cursor, encode_cursor
from xero_sync.schemas import SyncMessage


def test_a_client_id_is_one_per_organisation_per_practice():
    assert client_id_for("practice-a", "tenant-1") == client_id_for("practice-a", "tenant-1")
    assert client_id_for("practice-a", "tenant-1") != client_id_for("practice-b", "tenant-1")
    assert client_id_for("practice-a", "tenant-1") != client_id_for("practice-a", "tenant-2")


PRACTICE_IDS = {
    "one character": "p",
    "at the limit": "p" * MAX_PRACTICE_ID_BYTES,
    "at the limit in two-byte characters": "é" * (MAX_PRACTICE_ID_BYTES // 2),
    "a byte over": "p" * (MAX_PRACTICE_ID_BYTES + 1),
    "a byte over in two-byte characters": "é" * (MAX_PRACTICE_ID_BYTES // 2) + "p",
    "empty": "",
    "a lone surrogate": "practice-\ud800",
}


@pytest.mark.parametrize("practice_id", PRACTICE_IDS.values(), ids=PRACTICE_IDS.keys())
def test_the_sync_and_purge_messages_take_exactly_the_practice_ids_the_api_takes(practice_id):
    # The API takes a practice id when practice_id_problem finds none (api.caller_practice_id)
    taken = practice_id_problem(practice_id) is None
    client_id = client_id_for("practice-a", "tenant-1")
    for build in (
        lambda: SyncMessage(practice_id=practice_id, client_id=client_id, run_id="r", trigger=RunTrigger.NIGHTLY),
        lambda: PurgeMessage(practice_id=practice_id, client_id=client_id, step=0),
    ):
        try:
            message = build()
        except ValidationError:
            assert not taken
        else:
            assert taken
            assert type(message).model_validate_json(message.model_dump_json()).practice_id == practice_id


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
