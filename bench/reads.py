"""Reading one client's records through the data API, as a front end does: every resource paged to its end
(GET /clients/{id}/xero/{resource}?limit=N, following nextCursor), at each page size, timed; the DynamoDB requests
XeroDataFunction made for each page, by operation; and what was read against the emulator's ground truth.

The target (issue 20): a page of 100 invoices, with its contacts' current names, costs one Query plus at most one
BatchGetItem per 100 distinct contacts it names (and the GetItem of the client every route makes)."""

import math
import time
from collections import Counter
from typing import Any

from bench.aws_calls import FunctionCalls
from bench.stack import BenchStack
from local.cli.export_verify import api_pages, verify_ground_truth
from xero_sync.catalogue import BY_NAME, CATALOGUE
from xero_sync.rendering import named_contacts

READ_FUNCTION = "XeroDataFunction"
PAGE_SIZES = (100, 1000)
TARGET_RESOURCE = BY_NAME["Invoices"]
TARGET_PAGE_SIZE = 100
OPERATIONS = ("GetItem", "Query", "BatchGetItem")  # what the function may call (its IAM policy); others would show


def _ordered(operations: Counter[str]) -> dict[str, int]:
    """Requests by operation: the function's three always, any other as it appears."""
    rest = {name: n for name, n in sorted(operations.items()) if name not in OPERATIONS}
    return {operation: operations[operation] for operation in OPERATIONS} | rest


def _dynamodb(calls: Counter[str]) -> dict[str, int]:
    prefix = "dynamodb."
    return _ordered(Counter({name.removeprefix(prefix): n for name, n in calls.items() if name.startswith(prefix)}))


def within_target(page: dict[str, Any]) -> bool:
    """One Query, at most one BatchGetItem per 100 distinct contacts the page names."""
    calls: dict[str, int] = page["dynamodb"]
    contacts: int = page["contacts"]
    return calls["Query"] <= 1 and calls["BatchGetItem"] <= math.ceil(contacts / 100)


def read_everything(
    bench: BenchStack, practice: str, client_id: str, limit: int, calls: FunctionCalls
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Every resource paged to its end at this page size: the figures, and the records read per resource."""
    read: dict[str, list[dict[str, Any]]] = {}
    by_resource: dict[str, Any] = {}
    target_pages: list[dict[str, Any]] = []
    seconds = 0.0
    for spec in CATALOGUE:
        records: list[dict[str, Any]] = []
        totals: Counter[str] = Counter()
        most: Counter[str] = Counter()
        count = 0
        pages = api_pages(bench.api, practice, client_id, spec, limit)
        while True:
            before = calls.snapshot()
            started = time.monotonic()
            page = next(pages, None)  # the HTTP request: the handler runs in this process, in the stack's server
            seconds += time.monotonic() - started
            if page is None:
                break
            count += 1
            made = _dynamodb(calls.snapshot() - before)
            totals.update(made)
            most |= Counter(made)
            records += page["items"]
            if spec is TARGET_RESOURCE:
                contacts = len(named_contacts(page["items"]))
                target_pages.append({"records": len(page["items"]), "contacts": contacts, "dynamodb": made})
        read[spec.name] = records
        by_resource[spec.name] = {
            "records": len(records),
            "pages": count,
            "dynamodb": _ordered(totals),
            "maxPerPage": _ordered(most),
        }
    records_read = sum(len(r) for r in read.values())
    pages = sum(r["pages"] for r in by_resource.values())
    dynamodb = _ordered(sum((Counter(r["dynamodb"]) for r in by_resource.values()), Counter()))
    figures = {
        "limit": limit,
        "records": records_read,
        "pages": pages,
        "seconds": round(seconds, 3),
        "recordsPerSecond": round(records_read / seconds) if seconds else None,
        "dynamodb": dynamodb,
        "dynamodbPerPage": {operation: round(n / pages, 2) for operation, n in dynamodb.items()},
        "byResource": by_resource,
        "invoicePages": target_pages,
    }
    return figures, read


def measure_reads(bench: BenchStack, practice: str, client: dict[str, Any], log: Any) -> dict[str, Any]:
    """The client read whole at each page size; `readEqualsXero`: every read equals the emulator's ground truth."""
    out: dict[str, Any] = {}
    differences: dict[str, list[str]] = {}
    with FunctionCalls(READ_FUNCTION).counting() as calls:
        for limit in PAGE_SIZES:
            figures, read = read_everything(bench, practice, client["clientId"], limit, calls)
            verification = verify_ground_truth(bench.api, client, read)
            figures["readEqualsXero"] = verification.equal
            differences |= {name: wrong[:5] for name, wrong in verification.differences.items()}
            out[str(limit)] = figures
            log(
                f"read through the API, {limit} a page: {figures['records']:,} records in {figures['pages']} pages, "
                f"{figures['seconds']} s ({figures['recordsPerSecond']:,} records/s), DynamoDB {figures['dynamodb']}"
            )
    return {"pageSizes": out, "readEqualsXero": not differences, "differences": differences}
