"""The sync engine end to end on moto: link an emulated organisation, import it, change it, import the changes."""

from collections import Counter

from tests.sync_support import (
    counts_of,
    differences,
    run_to_end,
    sync,
)
from xero_sync.catalogue import CATALOGUE


def test_the_first_sync_after_linking_imports_the_whole_organisation(aws, emu, queue_url, link):
    tenant, client, message = link("Alpha Ltd")
    run = run_to_end(aws.session, queue_url, message)
    assert (run.status, run.error_code) == ("succeeded", None), run.error_message
    assert differences(emu, tenant, client.client_id) == {}
    counts = counts_of(run)
    assert counts["Invoices"]["inserted"] == len(emu.truth(tenant, "Invoices"))
    assert run.api_calls >= len(CATALOGUE)


def test_incremental_syncs_follow_three_rounds_of_changes_exactly(aws, emu, queue_url, link):
    tenant, client, message = link("Beta Ltd", size="small")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    for round_ in range(3):
        emu.change(tenant, 25, seed=f"round-{round_}")
        run = sync(aws.session, queue_url, client)
        assert (run.status, run.error_message) == ("succeeded", None)
        assert differences(emu, tenant, client.client_id) == {}, f"after round {round_}"


def test_a_day_of_changes_that_renames_contacts_reads_each_resource_once_and_re_reads_no_documents(
    aws, emu, queue_url, link
):
    # Given a synced client, and a day of changes in Xero that renamed contacts (their documents show the new name,
    # un-stamped), deleted contact groups and raised invoices
    tenant, client, message = link("Busy Day Ltd", size="small")
    assert run_to_end(aws.session, queue_url, message).status == "succeeded"
    changes = emu.change(tenant, 40, seed="a busy day")["changes"]
    assert changes["Contacts"]["updated"] and changes["Invoices"]["created"]  # renames, new documents
    emu.admin("DELETE", "/stats")
    # When the next incremental sync runs
    run = sync(aws.session, queue_url, client)
    assert run.status == "succeeded"
    # Then what a reader sees is Xero as it is now
    assert differences(emu, tenant, client.client_id) == {}
    # And every resource was read once for its changes (nothing re-read for the renames), and the contacts of the
    # new documents once more, by IDs (their IsCustomer/IsSupplier)
    calls = emu.stats(tenant)["calls"]
    assert {name: n for name, n in calls.items() if n != 1} == {"GET /Contacts": 2}, calls


def test_an_incremental_sync_with_nothing_changed_makes_one_call_per_resource_writes_nothing_and_reads_checkpoints_once(
    aws, emu, queue_url, link, every_aws_call
):
    tenant, client, message = link("Gamma Ltd", size="small")
    run_to_end(aws.session, queue_url, message)
    emu.admin("DELETE", "/stats")
    first_call = len(every_aws_call.calls)
    run = sync(aws.session, queue_url, client)
    assert run.status == "succeeded"
    stats = emu.stats(tenant)
    assert all(n == 1 for n in stats["calls"].values()), stats["calls"]
    assert stats["totalCalls"] <= len(CATALOGUE)
    written = {name: c["inserted"] + c["updated"] + c["deleted"] for name, c in counts_of(run).items()}
    assert set(written.values()) <= {0}, written
    # And the run read its checkpoints in one Query as it began, then each resource's once more, as its pass began
    table = aws.physical["CheckpointsTable"].ref
    reads = [c for c in every_aws_call.since(first_call) if c.params.get("TableName") == table]
    assert [c.operation for c in reads].count("Query") == 1
    pass_reads = Counter(
        c.params["Key"]["resource"]["S"]
        for c in reads
        if c.operation == "GetItem" and not c.params["Key"]["resource"]["S"].startswith("_")
    )
    assert pass_reads == dict.fromkeys((spec.name for spec in CATALOGUE), 1)
