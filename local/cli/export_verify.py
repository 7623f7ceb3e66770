"""`export` and `verify` for the CLI and the demo.

- `export` writes what the data API shows of a client; `verify` (the default) compares it with a full read from Xero
  through the Accounting API, paced like a sync (`local/cli/export_verify_in_process.py` verify_client, with the
  functions' environment pointed at the running stack): neither needs the emulator, so both work on a stack run against
  another Xero.
- `verify --ground-truth` compares the stored records with the Xero emulator's ground truth
  (`/_emulator/orgs/{tenant}/records/{resource}`), reading the Records table beside the stack: independent of the
  engine's own read path. Records are compared as a reader sees them: rendering.py resolves the copies of other
  records inside them (contacts, groups) from the stored records they point to.
"""

import importlib
import importlib.util
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.cli.stack_client import RECORD_BODY, RECORD_ID, StackHandle
from local.stack.function_environment import paced_to_emulator
from xero_sync.catalogue import CATALOGUE, ResourceSpec
from xero_sync.record_bodies import decode_body


@dataclass
class Verification:
    compared: dict[str, int] = field(default_factory=dict)  # resource -> records at Xero
    differences: dict[str, list[str]] = field(default_factory=dict)  # resource -> "missing/extra/changed <id>"

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def records(self) -> int:
        return sum(self.compared.values())


# --- against the emulator's ground truth ----------------------------------------------------------------------------
def renderer(handle: StackHandle, client_id: str) -> Any:
    """rendering.py's Renderer for the client, on the running stack's tables (its models name them at import)."""
    _with_stack_environment(handle)
    from xero_sync.rendering import Renderer

    return Renderer(client_id)


def stored_records(
    handle: StackHandle, client_id: str, spec: ResourceSpec, rendering: Any = None
) -> Iterator[dict[str, Any]]:
    """The client's stored records of one resource, as a reader sees them (`rendering`: a renderer to reuse)."""
    raw = (
        decode_body(item[RECORD_BODY]["B"], spec.id_field, item[RECORD_ID]["S"])
        for item in handle.record_items(client_id, spec.name)
    )
    return iter((rendering or renderer(handle, client_id)).render_all(spec, raw))


def verify_ground_truth(
    handle: StackHandle,
    client: dict[str, Any],
    read: Mapping[str, Iterable[dict[str, Any]]] | None = None,
) -> Verification:
    """Stored records of the client, as a reader sees them, against the organisation as the emulator holds it now.
    `read`: each resource's records as some reader got them (the data API's pages); by default the Records table,
    rendered here."""
    result = Verification()
    rendering = renderer(handle, client["clientId"]) if read is None else None
    for spec in CATALOGUE:
        records = handle.emulator_admin("GET", f"/orgs/{client['tenantId']}/records/{spec.name}")["records"]
        truth = {str(r[spec.id_field]): r for r in records}
        shown = stored_records(handle, client["clientId"], spec, rendering) if read is None else read[spec.name]
        stored = {str(r[spec.id_field]): r for r in shown}
        wrong = sorted(
            [f"missing {i}" for i in truth.keys() - stored.keys()]
            + [f"extra {i}" for i in stored.keys() - truth.keys()]
            + [f"changed {i}" for i in truth.keys() & stored.keys() if truth[i] != stored[i]]
        )
        result.compared[spec.name] = len(truth)
        if wrong:
            result.differences[spec.name] = wrong
    return result


# --- through the sync engine's read path: local/cli/export_verify_in_process.py -------------------------------------
def stack_environment(handle: StackHandle) -> tuple[dict[str, str], dict[str, str]]:
    """The environment the running stack gave its functions (as template.yaml declares it), and where AWS is."""
    environment = {name: str(value) for name, value in handle.state["environment"].items()}
    endpoints = {name: environment.pop(name) for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")}
    if not (handle.state.get("xero_emulator") or {}).get("url"):
        return environment, endpoints  # another Xero (or none): its minute is Xero's own
    scale = float((handle.emulator_admin("GET", "/config").get("rateLimits") or {}).get("timeScale") or 1.0)
    if scale != 1.0:  # the emulator's rate-limit minute is shorter (make demo SIZE=large): pace reads to it
        environment.update(paced_to_emulator(scale))
    return environment, endpoints


def _with_stack_environment(handle: StackHandle) -> None:
    """Points this process's shared package at the running stack (unless it runs the stack itself)."""
    if os.environ.get("RECORDS_TABLE") and os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") == handle.dynamodb_endpoint:
        return
    from local.stack.function_environment import apply_function_environment

    environment, endpoints = stack_environment(handle)
    os.environ.pop("AWS_PROFILE", None)
    apply_function_environment(environment, endpoints)


def _records_module(handle: StackHandle) -> Any:
    """local/cli/export_verify_in_process.py, imported once the shared package reads the stack's environment (its models
    name their tables at import)."""
    _with_stack_environment(handle)
    return importlib.import_module("local.cli.export_verify_in_process")


def api_pages(
    handle: StackHandle, practice: str, client_id: str, spec: ResourceSpec, limit: int = 1000
) -> Iterator[dict[str, Any]]:
    """A resource's pages as the practice reads them: GET /clients/{id}/xero/{resource}?limit=... followed to its end
    (each page is requested when the previous one has been taken)."""
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page: dict[str, Any] = handle.call("GET", f"/clients/{client_id}/xero/{spec.name}", practice, params=params)
        yield page
        cursor = page["nextCursor"]
        if cursor is None:
            return


def api_records(handle: StackHandle, practice: str, client_id: str, spec: ResourceSpec) -> Iterator[dict[str, Any]]:
    """A resource as the practice reads it: paged through the data API to its end."""
    for page in api_pages(handle, practice, client_id, spec):
        yield from page["items"]


def verify_through_xero(handle: StackHandle, practice: str, client: dict[str, Any]) -> list[str]:
    """The differences between what the data API shows of the client and a full read from Xero now (its Accounting
    API with the client's token set: the emulator's admin routes are not used, so any Xero-compatible server works)."""
    records = _records_module(handle)
    client_id = client["clientId"]
    found = records.verify_client(client_id, stored_records=lambda spec: api_records(handle, practice, client_id, spec))
    return [str(difference) for difference in found]


def export(handle: StackHandle, practice: str, client: dict[str, Any], out_dir: Path) -> dict[str, int]:
    """One JSONL file per resource ({Resource}.jsonl): the records as the data API shows them (as Xero shows them
    now), in Xero id order; returns records per resource."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for spec in CATALOGUE:
        with (out_dir / f"{spec.name}.jsonl").open("w", encoding="utf-8") as file:
            count = 0
            for record in api_records(handle, practice, client["clientId"], spec):
                file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
        written[spec.name] = count
    return written
