"""The faults a worker process injects (local/chaos/aws_faults.py, `python -m local worker --throttle-writes ...`) look
to the product exactly as AWS's own: DynamoDB Local behind throttled writes (ProvisionedThroughputExceededException,
UnprocessedItems) that botocore and PynamoDB retry, refused secret writes, and SQS deliveries copied."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from local.chaos.aws_faults import AwsFaults, FaultTally, Redeliveries, WorkerFaults
from local.stack.function_environment import forget_cached_clients
from xero_sync.catalogue import BY_NAME
from xero_sync.models import PassCheckpoint
from xero_sync.record_store import RecordStore


@pytest.fixture
def inject(engines) -> Iterator[Callable[[WorkerFaults], FaultTally]]:
    """Installs faults for the rest of the test: every client made afterwards gets them (and none once it ends)."""
    undo = []

    def install(faults: WorkerFaults) -> FaultTally:
        tally = FaultTally()
        undo.append(AwsFaults(faults, tally).install())
        forget_cached_clients()  # the models' connections are made again, through the hooked clients
        return tally

    yield install
    for uninstall in undo:
        uninstall()
    forget_cached_clients()


def contacts(count: int) -> list[dict]:
    return [
        {"ContactID": f"00000000-0000-0000-0000-{n:012d}", "Name": f"Contact {n}", "UpdatedDateUTC": "/Date(1)/"}
        for n in range(count)
    ]


def test_throttled_writes_are_retried_by_botocore_and_pynamodb_until_every_item_is_stored(inject, practice):
    # Given a quarter of DynamoDB writes throttled (whole requests refused, batches written in part)
    tally = inject(WorkerFaults(seed=7, throttle_writes=0.25))
    store = RecordStore(f"client-{practice}")
    # When a page of 150 records is stored and a checkpoint is saved 20 times
    applied = store.apply(BY_NAME["Contacts"], contacts(150))
    for page in range(20):
        PassCheckpoint(
            client_id=store.client_id, resource="Contacts", next_page=page, updated_at=datetime.now(UTC)
        ).save()
    # Then the retries stored everything, though writes were throttled both ways
    assert applied.counts.inserted == 150
    assert len(list(store.stored_ids("Contacts"))) == 150
    assert PassCheckpoint.get(store.client_id, "Contacts", consistent_read=True).next_page == 19
    assert tally.counts["batch items held back"] > 0
    assert sum(n for what, n in tally.counts.items() if what.startswith("throttled ")) > 0


def test_refused_secret_writes_fail_the_first_calls_then_writes_go_through(engines, inject, practice):
    tally = inject(WorkerFaults(fail_secret_writes=2))
    secrets = engines.session.client("secretsmanager", endpoint_url=engines.endpoints["AWS_ENDPOINT_URL"])
    name = f"chaos-test/{practice}"
    secrets.create_secret(Name=name, SecretString="first")
    for _ in range(2):
        with pytest.raises(ClientError, match="InternalServiceError"):
            secrets.put_secret_value(SecretId=name, SecretString="refused")
    secrets.put_secret_value(SecretId=name, SecretString="third")
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == "third"
    assert tally.counts["secret writes refused"] == 2


def test_deliveries_are_copied_back_to_the_queue_before_the_function_sees_them(engines):
    sqs = engines.session.client("sqs", endpoint_url=engines.endpoints["AWS_ENDPOINT_URL"])
    queue_url = sqs.create_queue(QueueName="chaos-redelivery-test")["QueueUrl"]
    tally = FaultTally()
    seen = []
    invoke = Redeliveries(sqs, queue_url, WorkerFaults(duplicate_deliveries=1.0), tally).around(
        lambda function, event: seen.append(event)
    )
    invoke("SyncClientFunction", {"Records": [{"body": '{"one": 1}'}, {"body": '{"two": 2}'}]})
    copies = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert sorted(m["Body"] for m in copies) == ['{"one": 1}', '{"two": 2}']
    assert len(seen) == 1 and tally.counts["deliveries duplicated"] == 2
