"""`make demo`: the whole product, offline, in one command.

The local stack starts (DynamoDB Local, moto, the Xero emulator, the HTTP front door, the queue worker), a practice
links a demo organisation through the API and the emulator's consent, the initial sync imports its history through
the queue and the worker, a round of changes is made "in Xero" and Sync Now imports just those, verify compares what
is stored with Xero, and the client is unlinked and relinked. Every step is the real code path: the demo only calls
the API (with a dev token) and the emulator's admin API, and reads progress beside the stack.
"""

import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from local.cli.export_verify import verify_through_xero
from local.cli.progress import RESOURCES, ProgressReader, RunProgress, follow, renderer_for, run_line, summary_table
from local.cli.stack_client import DEFAULT_PRACTICE, EXIT_FAILED, CliError, StackHandle
from local.stack.state_file import STATE_DIR

DEMO_ORG = "Kōwhai Trading Ltd"
SIZES = ("tiny", "small", "medium", "large")
# A large organisation reads ~1,200 pages: at Xero's 60 calls a minute that is 20 minutes of waiting. Large demos
# run the emulator's rate-limit clock 60x faster (a "minute" lasts a second) and tell the engine so.
DEFAULT_TIME_SCALE = {"tiny": 1.0, "small": 1.0, "medium": 1.0, "large": 60.0}
_QUIET_LOGGERS = ("botocore", "boto3", "pynamodb", "urllib3", "werkzeug", "local", "xero-sync", "xero_sync")


@dataclass
class DemoOptions:
    size: str = "small"
    keep: bool = False
    practice: str = DEFAULT_PRACTICE
    api_port: int = 3001
    console_port: int = 3000
    emulator_port: int = 3002
    state_dir: Path = STATE_DIR
    changes: int = 25
    time_scale: float | None = None


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.stack: Any = None
        self.handle: StackHandle | None = None
        self.began = time.monotonic()

    # --- output -----------------------------------------------------------------------------------------------------
    def step(self, text: str) -> None:
        elapsed = time.monotonic() - self.began
        self.console.print()
        self.console.rule(f"[bold]{text}[/bold]  [dim]{elapsed:5.1f} s[/dim]", align="left")

    def say(self, text: str, whole: bool = False) -> None:
        """A line of the demo; `whole` keeps it unbroken however wide (a URL or a token to copy)."""
        self.console.print(text, highlight=False, soft_wrap=whole)

    # --- the stack --------------------------------------------------------------------------------------------------
    def start_stack(self) -> StackHandle:
        from local.stack.offline_stack import OfflineStack

        scale = self.options.time_scale or DEFAULT_TIME_SCALE[self.options.size]
        self.step("1. Start the local stack and the Xero emulator")
        quiet_logs(self.options.state_dir / "logs" / "demo.log")
        self.stack = OfflineStack(
            api_port=self.options.api_port,
            console_port=self.options.console_port,
            emulator_port=self.options.emulator_port,
            run_schedules=False,
            state_dir=self.options.state_dir,
            write_state=True,
            xero_time_scale=scale,
        )
        try:
            self.stack.start()
        except OSError as error:
            raise CliError(
                f"the local stack could not start ({error}); is another stack running? `make down`, or pick other "
                "ports (python -m local demo --api-port 0 --console-port 0 --emulator-port 0)"
            ) from error
        quiet_logs(self.options.state_dir / "logs" / "demo.log")  # again: the functions' loggers exist now
        handle = StackHandle.attach(self.options.state_dir)
        self.handle = handle
        info = self.stack.describe()
        self.say(f"API (JWT)        {info['api']}")
        self.say(f"Xero emulator    {info['xero_emulator'].get('url')}")
        self.say(f"DynamoDB Local   {info['dynamodb']['endpoint']}    moto {info['moto']['endpoint']}")
        self.say(f"started in {self.stack.startup_seconds:.1f} s; logs in {self.options.state_dir / 'logs'}")
        if scale != 1.0:
            self.say(
                f"rate limits: Xero's 60 calls a minute, on a clock {scale:g}x faster (a minute lasts {60 / scale:g} s)"
            )
        return handle

    def stop_stack(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    # --- the story --------------------------------------------------------------------------------------------------
    def run(self) -> int:
        handle = self.start_stack()
        practice = self.options.practice

        self.step(f"2. Create a {self.options.size} organisation in the Xero emulator")
        org = handle.create_org(DEMO_ORG, self.options.size, seed=1)
        counts = {k: int(v) for k, v in org["counts"].items()}
        self.say(
            f"{org['name']} (tenant {org['tenantId']}): {sum(counts.values())} records in {len(counts)} "
            f"resources, e.g. {counts.get('Invoices', 0)} invoices, {counts.get('Journals', 0)} journals"
        )

        self.step("3. Link it: POST /clients/link → Xero consent → callback page → POST /xero/link-completions")
        authorize_url = handle.start_link(practice)
        self.say(f"authorize URL: {authorize_url[:110]}…")
        handle.emulator_admin("POST", "/consent", json={"tenantIds": [org["tenantId"]], "deny": False})
        redirect = handle.session.get(authorize_url, allow_redirects=False, timeout=30)
        self.say(f"Xero sends the browser back to the console: {redirect.headers['Location'].split('?')[0]}")
        before = handle.tenant_stats(org["tenantId"])  # the emulator's call log before the link's sync is queued
        outcome = handle.complete_link(practice, redirect.headers["Location"])
        (client_id,) = outcome["clientIds"]
        client = handle.client(practice, client_id)
        self.say(
            f"completed by the user who started it: {outcome['message']} client {client_id} is "
            f"{client['linkState']}; its first sync "
            f"is {client['currentRun']['status'] if client['currentRun'] else 'done'}"
        )

        self.step("4. Initial sync: the queue, the worker, DynamoDB")
        first = handle.first_run_after(practice, client_id, set())
        progress = self.follow(client, first["runId"], before, totals=counts)
        self.summary(progress, client_id, whole=True, title="The link's sync")

        self.step(f"5. Make {self.options.changes} changes in Xero, then press Sync Now")
        changed = handle.change_org(org["tenantId"], self.options.changes, seed=2)
        self.say("changed in Xero: " + _describe_changes(changed.get("changes") or {}))
        before = handle.tenant_stats(org["tenantId"])
        accepted = handle.sync_now(practice, client_id)
        self.say(f"POST /clients/{client_id[:8]}…/sync → run {accepted['runId']} {accepted['status']}")
        progress = self.follow(client, accepted["runId"], before, totals=None)
        self.summary(progress, client_id, whole=False, title="Sync Now: only the changes")
        self.verify(client)

        self.step("6. Unlink: the client stays, with its data, frozen")
        result = handle.unlink(practice, client_id)
        client = handle.client(practice, client_id)
        stored = sum(n for n, _ in handle.stored(client_id, list(counts)).values())
        self.say(
            f"POST /clients/{client_id[:8]}…/unlink → {result['linkState']} (Xero clean-up "
            f"{result.get('remoteCleanup')}); GET /clients/{client_id[:8]}… → {client['linkState']}, "
            f"{stored} records still stored"
        )
        try:
            handle.sync_now(practice, client_id)
            raise CliError("Sync Now was accepted for an unlinked client", EXIT_FAILED)
        except CliError as refused:
            if refused.exit_code == EXIT_FAILED and "client_not_linked" not in str(refused):
                raise
            self.say(f"Sync Now on the unlinked client → {str(refused).split(': ', 1)[-1]}")

        self.step("7. Relink (POST /clients/{id}/link → consent → link completion), and the sync that follows")
        earlier = {r["runId"] for r in handle.runs(practice, client_id)}
        before = handle.tenant_stats(org["tenantId"])
        relinked = handle.link(practice, [org["tenantId"]], client_id=client_id)
        client = handle.client(practice, client_id)
        self.say(
            f"completed: {relinked['message']} same client {relinked['clientIds'] == [client_id]}, "
            f"{client['linkState']}"
        )
        run = handle.first_run_after(practice, client_id, earlier)
        progress = self.follow(client, run["runId"], before, totals=None)
        self.summary(progress, client_id, whole=False, title="After relinking")
        self.verify(client)

        self.step(f"Done in {time.monotonic() - self.began:.0f} s")
        console = handle.state["console"]
        if self.options.keep:
            self.say(f"Practice console       {console}  (sign in as {practice}: its client is there)", whole=True)
            self.keep_running(client_id)
        else:
            self.say(f"Practice console       {console}  (`make demo KEEP=1` keeps it running)", whole=True)
        return 0

    def follow(
        self, client: dict[str, Any], run_id: str, before: dict[str, Any], totals: dict[str, int] | None
    ) -> RunProgress:
        """Draws the run's progress until it ends. `before` is the emulator's call log from before the run was asked
        for, so that every call of the run is counted. The title is the run's own trigger and mode, as recorded."""
        assert self.handle is not None
        practice = self.options.practice
        run = self.handle.run(practice, client["clientId"], run_id) or {}
        title = f"run {run_id} ({run.get('trigger')}, {run.get('mode')})"
        reader = ProgressReader(self.handle, practice, client, run_id, totals=totals, baseline=before)
        progress = follow(reader, renderer_for(self.console), title)
        if progress.status != "succeeded":
            run = progress.run
            raise CliError(
                f"the sync {run_id} {run.get('status')}: {run.get('errorCode')} {run.get('errorMessage')}", EXIT_FAILED
            )
        return progress

    def summary(self, progress: RunProgress, client_id: str, whole: bool, title: str) -> None:
        assert self.handle is not None
        stored = self.handle.stored(client_id, RESOURCES)
        run = progress.run
        title = f"{title}: {run.get('trigger')} sync, mode {run.get('mode')}"
        self.console.print(summary_table(progress, stored, whole, title=title))
        self.say(run_line(progress, whole, stored))

    def verify(self, client: dict[str, Any]) -> None:
        """What is stored against a full read of the organisation through Xero's Accounting API (paced like a sync,
        on the client's own token set), as `python -m local verify` does."""
        assert self.handle is not None
        self.say("verify: reading the whole organisation from Xero, paced to its limit of 60 calls a minute …")
        differences = verify_through_xero(self.handle, self.options.practice, client)
        if differences:
            for line in differences[:10]:
                self.say(f"  {line}")
            raise CliError(f"verify: {len(differences)} difference(s) between what is stored and Xero", EXIT_FAILED)
        stored = sum(self.handle.stored(client["clientId"], RESOURCES).get(name, (0, 0))[0] for name in RESOURCES)
        self.say(
            f"verify: stored data equals Xero — {stored} records in {len(RESOURCES)} resources, against a full read "
            "through the Accounting API"
        )

    def keep_running(self, client_id: str) -> None:
        assert self.handle is not None
        handle = self.handle
        practice = self.options.practice
        authorize_url = handle.start_link(practice)
        token = handle.token(practice, ttl=12 * 3600)
        self.console.print()
        self.say("The stack keeps running (Ctrl-C stops everything the demo started):")
        self.say(f"  Practice console     {handle.state['console']}  (sign in as {practice})", whole=True)
        self.say(f"  API                  {handle.api}")
        self.say(f"  Swagger UI           {handle.api}/_local/swagger")
        self.say(f"  Xero consent page    {authorize_url}", whole=True)
        self.say(
            "                       (link another organisation in a browser: create one with "
            "`python -m local org create`)"
        )
        self.say(f"  emulator admin       {handle.emulator}/_emulator/orgs")
        self.say(f"  dev token ({practice}, 12 h):")
        self.console.print(token, soft_wrap=True, highlight=False)
        self.say(f"  try: curl -H 'Authorization: Bearer <token>' {handle.api}/clients/{client_id}")
        self.say(
            f"       python -m local status · python -m local history {client_id[:8]} · "
            f"python -m local sync {client_id[:8]} --wait"
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()


def _describe_changes(changes: dict[str, dict[str, list[str]]]) -> str:
    parts = []
    for resource, actions in sorted(changes.items()):
        done = ", ".join(f"{len(ids)} {action}" for action, ids in sorted(actions.items()))
        parts.append(f"{resource} ({done})")
    return "; ".join(parts) or "nothing"


def quiet_logs(path: Path) -> None:
    """The stack and the functions log to a file: the demo's screen is for the story."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            logger.removeHandler(existing)
        logger.propagate = True
    for name in ("botocore", "boto3", "pynamodb", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def sigterm_stops_like_ctrl_c() -> None:
    """SIGTERM (`kill`, a CI timeout) unwinds like Ctrl-C, so what the command started is stopped: its engines run
    in sessions of their own, which a process killed outright would leave running."""

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def run_demo(options: DemoOptions, console: Console) -> int:
    sigterm_stops_like_ctrl_c()
    demo = Demo(options, console)
    try:
        return demo.run()
    except KeyboardInterrupt:
        console.print("\ninterrupted")
        return 130
    finally:
        if demo.stack is not None:
            console.print("stopping the local stack", highlight=False)
        demo.stop_stack()
