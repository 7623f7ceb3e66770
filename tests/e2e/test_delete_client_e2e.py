"""Deleting a client end to end: DELETE /clients/{id} answers 202 and the client is gone at once; the purge
function's queue poller removes a large client's items slice by slice, then its secret and Xero connection."""

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from local.stack.offline_stack import OfflineStack
from tests.e2e.helpers import Api, eventually
from tests.e2e.test_linking_e2e import a_synced_client, connected_tenants, secret_of, token_set_secrets
from tests.xero import Xero

pytestmark = pytest.mark.slow

SEEDED_RECORDS = 20_000  # with the purge stack's short invocations, more than one slice's work
RESOURCES = ("Invoices", "Contacts", "Journals", "BankTransactions", "Payments")


@pytest.fixture
def stack(purge_stack: OfflineStack) -> OfflineStack:
    return purge_stack


def seed_records(stack: OfflineStack, client_id: str, count: int) -> None:
    """`count` more records under the client, as years of syncs would leave them: items in the Records table's
    shape, written with BatchWriteItem straight from boto3 (the quickest way to put them in DynamoDB Local)."""
    from xero_sync.models import XeroRecord

    table = stack.physical["RecordsTable"].ref
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.dynamodb.endpoint, region_name=stack.region)

    def item(number: int) -> dict[str, Any]:
        partition = XeroRecord.partition_key(client_id, RESOURCES[number % len(RESOURCES)])
        return {
            XeroRecord.partition.attr_name: {"S": partition},
            XeroRecord.xero_id.attr_name: {"S": f"seeded-{number:08d}"},
            XeroRecord.body.attr_name: {"B": b"x" * 200},
        }

    def write(start: int) -> None:
        for batch in itertools.batched(range(start, min(start + 5000, count)), 25, strict=False):
            pending = [{"PutRequest": {"Item": item(n)}} for n in batch]
            while pending:
                answer = dynamodb.batch_write_item(RequestItems={table: pending})
                pending = answer.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(0, count, 5000)))


def records_of(stack: OfflineStack, client_id: str) -> int:
    """How many records the client holds (a count query per resource's partition)."""
    from xero_sync.catalogue import CATALOGUE
    from xero_sync.models import XeroRecord

    return sum(XeroRecord.count(XeroRecord.partition_key(client_id, spec.name)) for spec in CATALOGUE)


def client_item_gone(practice: str, client_id: str) -> bool:
    from xero_sync.models import Client

    return not list(Client.query(practice, Client.client_id == client_id, consistent_read=True))


def items_left(stack: OfflineStack, client_id: str) -> dict[str, int]:
    """Every item of the client in every table, by a full scan of each (what an auditor would run)."""
    from xero_sync.models import XeroRecord

    dynamodb = boto3.client("dynamodb", endpoint_url=stack.dynamodb.endpoint, region_name=stack.region)
    tables = {
        "Records": (XeroRecord.partition.attr_name, "begins_with"),
        "SyncRuns": ("client_id", "="),
        "Checkpoints": ("client_id", "="),
        "Clients": ("client_id", "="),
    }
    left: dict[str, int] = {}
    for short, (attribute, operator) in tables.items():
        table = stack.physical[f"{short}Table"].ref
        condition = "begins_with(#a, :v)" if operator == "begins_with" else "#a = :v"
        count = 0
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table,
            Select="COUNT",
            FilterExpression=condition,
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": {"S": client_id}},
        ):
            count += page["Count"]
        if count:
            left[short] = count
    return left


def test_deleting_a_large_client_purges_every_item_over_several_invocations_then_its_secret(
    stack: OfflineStack, api: Api, xero: Xero, practice: str
) -> None:
    # Given a linked, synced client holding 20,000 more records, and another client of the practice
    tenant, client_id, _ = a_synced_client(api, stack, xero, practice, "Doomed Ltd")
    other_tenant, other_id, _ = a_synced_client(api, stack, xero, practice, "Kept Ltd")
    secret = secret_of(stack, practice, client_id)
    seed_records(stack, client_id, SEEDED_RECORDS)
    stored = records_of(stack, client_id)
    assert stored > SEEDED_RECORDS
    purges_before = stack.worker_for("PurgeQueue").invocations
    # When the practice deletes it
    started = time.monotonic()
    response = api.request("DELETE", f"/clients/{client_id}", practice)
    # Then it is accepted, and the client is gone from the API at once
    assert response.status_code == 202, response.text
    assert response.json() == {"clientId": client_id, "status": "deleting"}
    assert api.get(f"/clients/{client_id}", practice).status_code == 404
    assert [c["clientId"] for c in api.get("/clients", practice).json()["items"]] == [other_id]
    # And the purge removes every item it owned, slice by slice through the purge queue (more than one invocation),
    # then its secret and its connection at Xero
    eventually(lambda: client_item_gone(practice, client_id), timeout=600, interval=2)  # the purge's last step
    assert items_left(stack, client_id) == {}
    took = time.monotonic() - started
    slices = stack.worker_for("PurgeQueue").invocations - purges_before
    assert slices > 1
    assert secret not in token_set_secrets(stack)
    assert tenant not in connected_tenants(xero) and other_tenant in connected_tenants(xero)
    # And the other client is untouched, and deleting again is simply "not found"
    assert api.get(f"/clients/{other_id}", practice).json()["linkState"] == "linked"
    assert api.request("DELETE", f"/clients/{client_id}", practice).status_code == 404
    print(f"purged {stored} records in {took:.0f} s, {slices} purge invocation(s)")
