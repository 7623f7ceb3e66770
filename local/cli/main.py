"""`python -m local` — the developer CLI over the local stack: up, down, token, nightly, worker,
status, org create|change|list, link, unlink, sync [--wait], history, export, verify, demo. `python -m local COMMAND -h`
tells more."""

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local.gc_pace import collect_less_often
from local.stack.state_file import SIGNING_KEY_NAME, STATE_DIR, STATE_FILE_NAME, read_state

READY_LINE = "Local stack ready"
_PROCESS_MARKERS = {"stack": "-m local", "dynamodb": "DynamoDBLocal", "moto": "moto_server"}


def _state(state_dir: Path) -> dict[str, Any]:
    state = read_state(state_dir)
    if state is None:
        sys.exit(f"no local stack is running (no {state_dir / STATE_FILE_NAME}); start one with `make up`")
    return state


def _alive(pid: int | None, marker: str) -> bool:
    """The process exists and is the one the state file names (a recycled PID is left alone)."""
    if not pid:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in command


def _wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, marker):
            return True
        time.sleep(0.1)
    return not _alive(pid, marker)


def up(args: argparse.Namespace) -> int:
    from local.stack.offline_stack import OfflineStack
    from local.stack.provision import LOCAL_XERO_APP

    state_file = args.state_dir / STATE_FILE_NAME
    if state_file.exists():
        previous = json.loads(state_file.read_text())
        if _alive(previous.get("pid"), _PROCESS_MARKERS["stack"]):
            sys.exit(f"a local stack is already running (pid {previous['pid']}, {previous['api']}): make down first")
        state_file.unlink()
    # On the console, and in the state directory's logs/ with DynamoDB Local's and moto's (kept after the stack stops).
    (args.state_dir / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(args.state_dir / "logs" / "local.log")],
    )
    for quiet in ("botocore", "boto3", "pynamodb", "urllib3"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    # SIGUSR1 writes where every thread is to logs/threads.log, even while the stack hangs (`kill -USR1 <pid>`).
    threads_log = (args.state_dir / "logs" / "threads.log").open("a")
    faulthandler.register(signal.SIGUSR1, file=threads_log, all_threads=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = OfflineStack(
        api_port=args.api_port,
        console_port=args.console_port,
        dynamodb_port=args.dynamodb_port,
        moto_port=args.moto_port,
        emulator_port=args.emulator_port,
        db_path=args.db_path,
        emulator=not args.no_emulator,
        xero_url=args.xero_url,
        xero_app={
            "client_id": os.environ.get("XERO_CLIENT_ID", LOCAL_XERO_APP["client_id"]),
            "client_secret": os.environ.get("XERO_CLIENT_SECRET", LOCAL_XERO_APP["client_secret"]),
        },
        visibility_timeout=args.visibility_timeout,
        xero_time_scale=args.time_scale,
        run_schedules=not args.no_schedules,
        state_dir=args.state_dir,
        write_state=True,
    )
    try:
        stack.start()
        info = stack.describe()
        emulator = info["xero_emulator"].get("url") or f"off ({info['xero_emulator'].get('error') or '--no-emulator'})"
        print(f"API (HTTP API, JWT)    {info['api']}")
        print(f"Console (web/)         {info['console']} (Xero sends the browser back to its /xero/callback)")
        print(f"Swagger UI             {info['swagger']} (OpenAPI: {info['openapi']}; Authorize with a token)")
        print(f"DynamoDB Local         {info['dynamodb']['endpoint']} (pid {info['dynamodb']['pid']})")
        print(f"moto (SQS, Secrets Manager, KMS, Scheduler)  {info['moto']['endpoint']} (pid {info['moto']['pid']})")
        print(f"Xero emulator          {emulator}")
        if info["xero_url"]:
            print(f"Xero (another server)  {info['xero_url']}")
        for name, when in info["next_schedule_times"].items():
            print(f"schedule {name:<13} next at {when} (fire now: python -m local nightly)")
        print(f"state file             {stack.state_file}")
        print(f"{READY_LINE} in {stack.startup_seconds:.1f} s (pid {os.getpid()}; Ctrl-C or `make down` stops it)")
        sys.stdout.flush()
        stop.wait()
    finally:
        print("stopping the local stack", flush=True)
        stack.stop()
        # The process ends when these do: invocations that outlived the hand-over, on engines that are gone now.
        lingering = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
        if lingering:
            logging.getLogger("local.cli").warning("waiting for threads still running: %s", ", ".join(lingering))
    return 0


def down(args: argparse.Namespace) -> int:
    state_file = args.state_dir / STATE_FILE_NAME
    state = _state(args.state_dir)
    pid = state.get("pid")
    if _alive(pid, _PROCESS_MARKERS["stack"]):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, _PROCESS_MARKERS["stack"], 20):
            print(f"the stack (pid {pid}) did not stop within 20 s", file=sys.stderr)
    # Children the stack could not stop (it was killed, say): by their own PIDs, process group included.
    for name in ("dynamodb", "moto"):
        child = state.get(name, {}).get("pid")
        if _alive(child, _PROCESS_MARKERS[name]):
            from local.stack.aws_engines import stop_pid

            stop_pid(child)
            _wait_gone(child, _PROCESS_MARKERS[name], 10)
    if state_file.exists():
        state_file.unlink()
    print("local stack stopped")
    return 0


def token(args: argparse.Namespace) -> int:
    from local.stack.jwt_auth import SigningKey, TokenIssuer

    state = _state(args.state_dir)
    jwt_state = state["jwt"]
    key = SigningKey.load_or_create(Path(jwt_state.get("key_path") or args.state_dir / SIGNING_KEY_NAME))
    issuer = TokenIssuer(key, jwt_state["issuer"], jwt_state["audience"], jwt_state["practice_claim"])
    print(issuer.mint(args.practice, args.user, args.ttl))
    return 0


def fire(args: argparse.Namespace) -> int:
    import requests

    state = _state(args.state_dir)
    response = requests.post(f"{state['api']}/_local/schedules/{args.schedule}", timeout=300)
    print(json.dumps(response.json(), indent=2))
    return 0 if response.ok else 1


def worker(args: argparse.Namespace) -> int:
    from local.chaos.aws_faults import WorkerFaults
    from local.chaos.worker_process import run_worker, state_of

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for quiet in ("botocore", "boto3", "pynamodb", "urllib3"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    faults = WorkerFaults.from_arguments(args)
    state = state_of(args.state_dir)
    return run_worker(
        state, args.queue, args.kill_at_io, args.exit_when_idle, args.concurrency, faults, args.visibility_timeout
    )


def chaos(args: argparse.Namespace) -> int:
    from local.chaos.driver import chaos_stack, run_seeds, summary
    from local.chaos.plan import parse_seeds
    from local.cli.demo import quiet_logs, sigterm_stops_like_ctrl_c

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    state_dir = args.state_dir / "chaos"
    quiet_logs(state_dir / "logs" / "chaos.log")
    began = time.monotonic()
    print(f"chaos: seeds {args.seeds} on a local stack of its own (logs in {state_dir / 'logs'})", flush=True)
    sigterm_stops_like_ctrl_c()  # the stack and the workers it started go too
    try:
        with chaos_stack(state_dir) as stack:
            quiet_logs(state_dir / "logs" / "chaos.log")  # again: the functions' loggers exist now
            reports = run_seeds(stack, seeds, lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("chaos: stopped before its end; what it started is stopped", file=sys.stderr, flush=True)
        return 130
    for line in summary(reports, time.monotonic() - began):
        print(line, flush=True)
    return 0 if all(report.clean for report in reports) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help="where stack.json and the JWT key live")
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("up", help="start the local stack (Ctrl-C stops it)")
    start.add_argument("--api-port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "3001")))
    start.add_argument("--console-port", type=int, default=int(os.environ.get("LOCAL_CONSOLE_PORT", "3000")))
    start.add_argument("--dynamodb-port", type=int, default=int(os.environ.get("LOCAL_DYNAMODB_PORT", "0")))
    start.add_argument("--moto-port", type=int, default=int(os.environ.get("LOCAL_MOTO_PORT", "0")))
    start.add_argument("--emulator-port", type=int, default=int(os.environ.get("LOCAL_XERO_PORT", "3002")))
    start.add_argument("--db-path", type=Path, default=None, help="keep DynamoDB Local's data in this folder")
    start.add_argument("--no-emulator", action="store_true", help="do not start the Xero emulator")
    start.add_argument(
        "--xero-url",
        default=None,
        help="another Xero-compatible base URL (login, identity and accounting paths as Xero lays them out); the "
        "emulator stays off. Its app credentials: XERO_CLIENT_ID / XERO_CLIENT_SECRET (else the local app's); register "
        "the console's /xero/callback with it",
    )
    start.add_argument("--no-schedules", action="store_true", help="fire schedules only on demand")
    start.add_argument("--visibility-timeout", type=int, default=None, help="override the sync queue's (seconds)")
    start.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the emulator's rate-limit clock this many times faster, the functions pacing to it (60: 1 s a minute)",
    )
    start.set_defaults(run=up)

    commands.add_parser("down", help="stop the running local stack").set_defaults(run=down)

    mint = commands.add_parser("token", help="mint a JWT for the running stack")
    mint.add_argument("--practice", required=True)
    mint.add_argument("--user", default="local-user")
    mint.add_argument("--ttl", type=int, default=3600, help="seconds")
    mint.set_defaults(run=token)

    nightly = commands.add_parser("nightly", help="fire the nightly schedule on the running stack")
    nightly.add_argument("--schedule", default="nightly")
    nightly.set_defaults(run=fire)

    poller = commands.add_parser("worker", help="poll a queue of the running stack in a process of its own")
    poller.add_argument("--queue", default="SyncQueue", help="the queue's logical id in template.yaml")
    poller.add_argument("--kill-at-io", type=int, default=None, help="SIGKILL itself before its Nth network send")
    poller.add_argument("--exit-when-idle", type=float, default=None, help="stop after this many idle seconds")
    poller.add_argument("--concurrency", type=int, default=1, help="invocations at once (execution environments)")
    poller.add_argument(
        "--visibility-timeout", type=int, default=None, help="seconds a message taken stays hidden (default: queue's)"
    )
    from local.chaos.aws_faults import WorkerFaults

    WorkerFaults.add_arguments(poller)
    poller.set_defaults(run=worker)

    storm = commands.add_parser("chaos", help="the chaos driver: seeded faults on a local stack of its own")
    storm.add_argument("--seeds", default="1-100", help="e.g. 1-100, 7, or 1,5,9-12")
    storm.set_defaults(run=chaos)

    from local.cli.commands import add_commands, run_command

    add_commands(commands)

    args = parser.parse_args(argv)
    collect_less_often()
    if args.db_path if args.command == "up" else False:
        args.db_path.mkdir(parents=True, exist_ok=True)
    return run_command(args)
