"""The developer CLI's commands on a running local stack: org create/change, link, unlink, sync, status, history,
export, verify, demo. Each reaches the stack through its API (dev token) and the emulator's admin API; see
local/cli/stack_client.py. Wrong input or a stopped stack is a `CliError`: a one-line message and a non-zero exit
code."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from local.cli.stack_client import DEFAULT_PRACTICE, EXIT_BAD_INPUT, EXIT_FAILED, CliError, StackHandle


def console() -> Console:
    """Bars and colour on a terminal; plain text (wide enough for the tables) anywhere else."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, no_color=True, width=140, emoji=False)
    return out


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "—"


def _client_arg(parser: argparse.ArgumentParser) -> None:
    """The client a command works on: `CLIENT` or `--client CLIENT`."""
    what = "client id, a unique prefix of it, or the organisation's name"
    parser.add_argument("client", nargs="?", help=what)
    parser.add_argument("--client", dest="client_option", metavar="CLIENT", help=f"the same: {what}")


def add_commands(commands: Any, practice_default: str = DEFAULT_PRACTICE) -> None:
    def practice(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--practice", default=practice_default, help=f"default {practice_default}")
        return parser

    org = commands.add_parser("org", help="organisations in the Xero emulator")
    org_commands = org.add_subparsers(dest="org_command", required=True)
    create = org_commands.add_parser("create", help="create a demo organisation (prints its tenant id)")
    create.add_argument("--name", default="Demo Org Ltd")
    create.add_argument("--size", choices=("tiny", "small", "medium", "large"), default="small")
    create.add_argument("--seed", default="1", help="the same name, seed and size give the same organisation")
    create.set_defaults(run=org_create)
    change = org_commands.add_parser("change", help="make changes in an organisation, as its users would")
    change.add_argument("tenant", help="tenant id, or a client (id, prefix or name) of --practice")
    change.add_argument("--count", type=int, default=20)
    change.add_argument("--seed", default="2")
    practice(change).set_defaults(run=org_change)
    org_list = org_commands.add_parser("list", help="the emulator's organisations")
    org_list.set_defaults(run=org_list_command)

    link = practice(commands.add_parser("link", help="link organisations (the consent is answered for you)"))
    link.add_argument("tenants", nargs="+", help="tenant ids to tick on the consent page")
    link.add_argument("--client", help="relink this client instead of linking new ones")
    link.add_argument("--wait", action="store_true", help="follow the sync the link queues")
    link.set_defaults(run=link_command)

    unlink = practice(commands.add_parser("unlink", help="unlink a client (its data stays)"))
    _client_arg(unlink)
    unlink.set_defaults(run=unlink_command)

    sync = practice(commands.add_parser("sync", help="Sync Now"))
    _client_arg(sync)
    sync.add_argument("--mode", choices=("incremental", "full"), default="incremental")
    sync.add_argument("--wait", action="store_true", help="follow the run with a progress bar per resource")
    sync.set_defaults(run=sync_command)

    status = practice(commands.add_parser("status", help="the stack and the practice's clients"))
    status.add_argument("--json", action="store_true", help="print the stack's state file")
    status.set_defaults(run=status_command)

    history = practice(commands.add_parser("history", help="a client's sync runs, newest first"))
    _client_arg(history)
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(run=history_command)

    export = practice(commands.add_parser("export", help="a client's stored records as files"))
    _client_arg(export)
    export.add_argument("--out", type=Path, default=None, help="folder (default .local-stack/export/<client id>)")
    export.set_defaults(run=export_command)

    verify = practice(commands.add_parser("verify", help="stored records against Xero (exit 1 if they differ)"))
    _client_arg(verify)
    verify.add_argument(
        "--ground-truth", action="store_true", help="compare with the emulator's records instead of reading Xero's API"
    )
    verify.set_defaults(run=verify_command)

    demo = commands.add_parser("demo", help="the whole product, offline (make demo)")
    demo.add_argument("--size", choices=("tiny", "small", "medium", "large"), default="small")
    demo.add_argument("--keep", action="store_true", help="leave the stack running; Ctrl-C stops it")
    demo.add_argument("--api-port", type=int, default=3001)
    demo.add_argument("--console-port", type=int, default=3000)
    demo.add_argument("--emulator-port", type=int, default=3002)
    demo.add_argument("--changes", type=int, default=25, help="changes made in Xero before Sync Now")
    demo.add_argument("--time-scale", type=float, default=None, help="emulator rate-limit clock speed-up")
    practice(demo).set_defaults(run=demo_command)


# --- commands -------------------------------------------------------------------------------------------------------
def org_create(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    org = handle.create_org(args.name, args.size, args.seed)
    out = console()
    records = sum(int(v) for v in org["counts"].values())
    out.print(f"{org['name']}: tenant {org['tenantId']} ({org.get('size')}, {records} records)", highlight=False)
    return 0


def org_list_command(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    table = Table("tenant", "name", "size", "records", title="Xero emulator organisations", title_justify="left")
    for org in handle.emulator_admin("GET", "/orgs")["orgs"]:
        table.add_row(org["tenantId"], org["name"], str(org.get("size")), str(sum(org["counts"].values())))
    console().print(table)
    return 0


def _tenant(handle: StackHandle, practice: str, reference: str) -> str:
    orgs = {o["tenantId"] for o in handle.emulator_admin("GET", "/orgs")["orgs"]}
    if reference in orgs:
        return reference
    return str(handle.resolve_client(practice, reference)["tenantId"])


def org_change(args: argparse.Namespace) -> int:
    from local.cli.demo import _describe_changes

    handle = StackHandle.attach(args.state_dir)
    tenant = _tenant(handle, args.practice, args.tenant)
    result = handle.change_org(tenant, args.count, args.seed)
    console().print(f"{result.get('applied')} changes: {_describe_changes(result.get('changes') or {})}")
    return 0


def link_command(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    client_id = handle.resolve_client(args.practice, args.client)["clientId"] if args.client else None
    before = (
        {
            c["clientId"]: {r["runId"] for r in handle.runs(args.practice, c["clientId"])}
            for c in handle.clients(args.practice)
        }
        if args.wait
        else {}
    )
    outcome = handle.link(args.practice, args.tenants, client_id)
    out = console()
    out.print(f"{outcome['message']} clients: {' '.join(outcome['clientIds'])}", highlight=False)
    if not args.wait:
        return 0
    code = 0
    for linked in outcome["clientIds"]:
        client = handle.client(args.practice, linked)
        run = handle.first_run_after(args.practice, linked, before.get(linked, set()))
        code = max(code, _follow(handle, args.practice, client, run["runId"], out))
    return code


def unlink_command(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    client = handle.resolve_client(args.practice, args.client)
    result = handle.unlink(args.practice, client["clientId"])
    console().print(
        f"{client['name']} ({client['clientId']}): {result['linkState']}, Xero clean-up "
        f"{result.get('remoteCleanup')}; its data is kept",
        highlight=False,
    )
    return 0


def _follow(handle: StackHandle, practice: str, client: dict[str, Any], run_id: str, out: Console) -> int:
    from local.cli.progress import RESOURCES, ProgressReader, follow, renderer_for, run_line, summary_table

    first = client.get("lastSuccessfulSyncAt") is None
    totals = None
    if first:
        try:
            totals = {k: int(v) for k, v in handle.org(client["tenantId"])["counts"].items()}
        except CliError:
            totals = None  # not an emulated organisation
    reader = ProgressReader(handle, practice, client, run_id, totals=totals)
    progress = follow(reader, renderer_for(out), f"sync {run_id} of {client['name']}")
    stored = handle.stored(client["clientId"], RESOURCES)
    out.print(summary_table(progress, stored, whole=first))
    out.print(run_line(progress, first, stored), highlight=False)
    if progress.status != "succeeded":
        out.print(f"failed: {progress.run.get('errorCode')}: {progress.run.get('errorMessage')}", highlight=False)
        return EXIT_FAILED
    return 0


def sync_command(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    client = handle.resolve_client(args.practice, args.client)
    accepted = handle.sync_now(args.practice, client["clientId"], args.mode)
    out = console()
    out.print(f"Sync Now {client['name']}: run {accepted['runId']} {accepted['status']}", highlight=False)
    if not args.wait:
        return 0
    return _follow(handle, args.practice, client, accepted["runId"], out)


def status_command(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    if args.json:
        print(json.dumps(handle.state, indent=2))
        return 0
    out = console()
    state = handle.state
    out.print(
        f"local stack (pid {state.get('pid')}): API {handle.api} · Xero emulator "
        f"{(state.get('xero_emulator') or {}).get('url') or 'off'} · DynamoDB {handle.dynamodb_endpoint}",
        highlight=False,
    )
    table = Table(
        "client",
        "organisation",
        "link",
        "last successful sync",
        "current run",
        title=f"clients of {args.practice}",
        title_justify="left",
    )
    clients = handle.clients(args.practice)
    for client in clients:
        run = client.get("currentRun")
        table.add_row(
            client["clientId"],
            client["name"],
            client["linkState"],
            _when(client.get("lastSuccessfulSyncAt")),
            f"{run['status']} {run['runId']}" if run else "—",
        )
    out.print(table)
    if not clients:
        out.print("no clients yet: `python -m local org create`, then `python -m local link <tenant> --wait`")
    return 0


def history_command(args: argparse.Namespace) -> int:
    handle = StackHandle.attach(args.state_dir)
    client = handle.resolve_client(args.practice, args.client)
    table = Table(
        "run",
        "trigger",
        "mode",
        "status",
        "queued",
        "took",
        "records",
        "API calls",
        "429s",
        "waited",
        "error",
        title=f"sync history of {client['name']} ({client['clientId']})",
        title_justify="left",
    )
    for run in handle.runs(args.practice, client["clientId"], args.limit):
        fetched = sum(int(c.get("fetched", 0)) for c in (run.get("counts") or {}).values())
        took = "—"
        if run.get("startedAt") and run.get("finishedAt"):
            from datetime import datetime

            took = f"{(datetime.fromisoformat(run['finishedAt']) - datetime.fromisoformat(run['startedAt'])).total_seconds():.1f} s"  # noqa: E501
        table.add_row(
            run["runId"],
            run["trigger"],
            run["mode"],
            run["status"],
            _when(run.get("queuedAt")),
            took,
            str(fetched),
            str(run.get("apiCalls", 0)),
            str(run.get("rateLimited", 0)),
            f"{float(run.get('waitedSeconds') or 0):.1f} s",
            run.get("errorCode") or "",
        )
    console().print(table)
    return 0


def export_command(args: argparse.Namespace) -> int:
    from local.cli.export_verify import export

    handle = StackHandle.attach(args.state_dir)
    client = handle.resolve_client(args.practice, args.client)
    out_dir = args.out or args.state_dir / "export" / client["clientId"]
    counts = export(handle, args.practice, client, out_dir)
    console().print(
        f"exported {sum(counts.values())} records of {client['name']} in {len(counts)} resources to {out_dir}",
        highlight=False,
    )
    return 0


def verify_command(args: argparse.Namespace) -> int:
    from local.cli.export_verify import verify_ground_truth, verify_through_xero

    handle = StackHandle.attach(args.state_dir)
    client = handle.resolve_client(args.practice, args.client)
    out = console()
    if args.ground_truth:
        result = verify_ground_truth(handle, client)
        for resource, wrong in result.differences.items():
            out.print(f"  {resource}: {len(wrong)} differ: {', '.join(wrong[:5])}", highlight=False)
        what = f"{result.records} records in {len(result.compared)} resources, against the emulator's ground truth"
        differences = sum(len(w) for w in result.differences.values())
    else:
        found = verify_through_xero(handle, args.practice, client)
        for line in found[:50]:
            out.print(f"  {line}", highlight=False)
        what = "a full read from Xero through the Accounting API"
        differences = len(found)
    if differences:
        out.print(f"{client['name']}: {differences} difference(s) from Xero ({what})", highlight=False)
        return EXIT_FAILED
    out.print(f"{client['name']}: stored data equals Xero ({what})", highlight=False)
    return 0


def demo_command(args: argparse.Namespace) -> int:
    from local.cli.demo import DemoOptions, run_demo

    options = DemoOptions(
        size=args.size,
        keep=args.keep,
        practice=args.practice,
        api_port=args.api_port,
        console_port=args.console_port,
        emulator_port=args.emulator_port,
        state_dir=args.state_dir,
        changes=args.changes,
        time_scale=args.time_scale,
    )
    return run_demo(options, console())


def run_command(args: argparse.Namespace) -> int:
    """Runs a command; a CliError is one line on stderr and its exit code."""
    try:
        if hasattr(args, "client_option"):
            if args.client and args.client_option and args.client != args.client_option:
                raise CliError("name the client once: CLIENT or --client CLIENT", EXIT_BAD_INPUT)
            args.client = args.client or args.client_option
            if not args.client:
                raise CliError("which client? name it: CLIENT or --client CLIENT", EXIT_BAD_INPUT)
        result: int = args.run(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return result
