"""`make demo`'s steps as CI runs them (no terminal: plain lines, no bars), then the developer CLI against the stack
the demo leaves running (`--keep`), and Ctrl-C stopping everything it started."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest
import requests

from local.stack.template import REPO_ROOT
from tests.e2e.helpers import EPHEMERAL_PORTS, developer_environment, local_command, run_local
from tests.sync_support import XERO_TIME_SCALE

pytestmark = pytest.mark.slow

READY_BUDGET_SECONDS = 600  # the whole demo on a busy 2-core machine; it aims at well under a minute
# The last line the demo prints before it waits for Ctrl-C: the lines above it (the token among them) are all written.
DEMO_WAITS_FOR_CTRL_C = re.compile(r"python -m local sync \S+ --wait$", re.MULTILINE)


def _local(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_local(state_dir, *args, timeout=timeout)  # the demo's commands sync and verify: longer than most


_HEADER = re.compile(r"^run (\S+) \((\w+), (\w+)\)$")  # the follow's title: the run's trigger and mode
_RESOURCE = re.compile(r"^  (\w+) +(\d+) fetched +(\d+) calls?$")
_STATE = re.compile(r"^  run (\w+) · API calls (\d+) · 429s (\d+) · waited ([\d.]+) s")
_TITLE = re.compile(r": (\w+) sync, mode (\w+)\s*$")


def _syncs_as_printed(output: str) -> dict[str, dict[str, object]]:
    """Each sync the demo followed, as its plain lines say: per resource what was fetched and the calls, the run's
    final state, the summary table's rows and total, its title, and the run line under it."""
    syncs: dict[str, dict[str, object]] = {}
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    for at, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        run_id, trigger, mode = _HEADER.match(lines[at]).groups()  # type: ignore[union-attr]
        section = lines[at + 1 : end]
        printed: dict[str, object] = {"trigger": trigger, "mode": mode}
        printed["lines"] = {
            m[1]: (int(m[2]), int(m[3])) for m in (_RESOURCE.match(line) for line in section) if m is not None
        }
        state = next(m for m in (_STATE.match(line) for line in section) if m is not None)
        printed["state"] = (state[1], int(state[2]), int(state[3]), state[4])
        title = next(m for m in (_TITLE.search(line) for line in section) if m is not None)
        printed["title"] = (title[1], title[2])
        rows = {}
        for line in section:
            cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
            if len(cells) == 9 and cells[1].isdigit():
                rows[cells[0]] = {
                    key: int(cells[i]) for i, key in ((1, "fetched"), (2, "new"), (3, "changed"), (4, "removed"))
                } | {"calls": int(cells[7])}
        printed["total"] = rows.pop("total")
        printed["rows"] = rows
        text = " ".join(" ".join(section).split())  # the run line may wrap
        summary = re.search(
            rf"run {run_id} (\w+) \((\w+), (\w+)\): (\d+) records fetched, (\d+) API calls .*?, (\d+) rate-limited, "
            r"waited ([\d.]+) s,",
            text,
        )
        assert summary is not None, f"no run line for {run_id} in:\n" + "\n".join(section)
        printed["summary"] = summary.groups()
        syncs[run_id] = printed
    return syncs


def _check_against_the_runs(printed: dict[str, dict[str, object]], runs: list[dict[str, object]]) -> None:
    """Every figure the demo printed for a sync is the run's own, as GET /clients/{id}/syncs returns it."""
    by_id = {run["runId"]: run for run in runs}
    for run_id, shown in printed.items():
        run = by_id[run_id]
        counts: dict[str, dict[str, int]] = run["counts"]  # type: ignore[assignment]
        calls, limited, waited = int(run["apiCalls"]), int(run["rateLimited"]), f"{float(run['waitedSeconds']):.1f}"
        where = f"run {run_id} ({run['trigger']}, {run['mode']})"
        assert (shown["trigger"], shown["mode"]) == (run["trigger"], run["mode"]), where
        assert shown["title"] == (run["trigger"], run["mode"]), where
        lines: dict[str, tuple[int, int]] = shown["lines"]  # type: ignore[assignment]
        rows: dict[str, dict[str, int]] = shown["rows"]  # type: ignore[assignment]
        assert set(lines) == set(counts) and set(rows) >= set(counts), where
        for name, recorded in counts.items():
            assert lines[name][0] == recorded["fetched"], f"{name}: line {lines[name]}, recorded {recorded}; {where}"
            row = rows[name]
            assert (row["fetched"], row["new"], row["changed"], row["removed"]) == (
                recorded["fetched"],
                recorded["inserted"],
                recorded["updated"],
                recorded["deleted"],
            ), f"{name}: summary {row}, recorded {recorded}; {where}"
            assert lines[name][1] == row["calls"], f"{name}: line {lines[name]}, summary {row}; {where}"
        for key, field in (("fetched", "fetched"), ("new", "inserted"), ("changed", "updated"), ("removed", "deleted")):
            assert shown["total"][key] == sum(c[field] for c in counts.values()), f"total {key}: {where}"  # type: ignore[index]
        assert shown["total"]["calls"] == calls, where  # type: ignore[index]
        assert shown["state"] == (run["status"], calls, limited, waited), where
        fetched = sum(c["fetched"] for c in counts.values())
        assert shown["summary"] == (
            run["status"],
            run["trigger"],
            run["mode"],
            str(fetched),
            str(calls),
            str(limited),
            waited,
        ), where


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def _start_demo(state_dir: Path, log: IO[str], *options: str) -> subprocess.Popen[str]:
    """`python -m local demo` on a tiny organisation (rate-limit minute shortened to a second), its output in `log`."""
    return subprocess.Popen(  # noqa: S603 - our own command line
        local_command(
            state_dir, "demo", "--size", "tiny", "--time-scale", str(XERO_TIME_SCALE), *EPHEMERAL_PORTS, *options
        ),
        cwd=REPO_ROOT,
        env=developer_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_the_demo_links_syncs_changes_unlinks_and_relinks_then_the_cli_works_on_the_stack_it_keeps(
    tmp_path: Path,
) -> None:
    # Given `python -m local demo --keep` on a tiny organisation
    log = (tmp_path / "demo.out").open("w+")
    process = _start_demo(tmp_path, log, "--changes", "12", "--keep")
    try:
        deadline = time.monotonic() + READY_BUDGET_SECONDS
        output = ""
        while not DEMO_WAITS_FOR_CTRL_C.search(output):
            assert process.poll() is None, f"the demo ended early ({process.returncode}):\n{Path(log.name).read_text()}"
            assert time.monotonic() < deadline, f"the demo did not finish:\n{Path(log.name).read_text()}"
            time.sleep(1)
            output = Path(log.name).read_text()

        # Then every step happened, through the API, without bars (stdout is not a terminal)
        for expected in (
            "1. Start the local stack",
            "2. Create a tiny organisation",
            "3. Link it",
            "4. Initial sync",
            "Initial sync",
            "5. Make 12 changes in Xero, then press Sync Now",
            "Sync Now: only the changes",
            "verify: stored data equals Xero",
            "6. Unlink",
            "Sync Now on the unlinked client → the client is unlinked",
            "7. Relink",
            "After relinking",
            "/_local/swagger",
            "Practice console",
        ):
            assert expected in output, f"{expected!r} missing from:\n{output}"
        assert "records ·" not in output and "\x1b[" not in output  # no live bars, no colour
        assert output.count("verify: stored data equals Xero") == 2
        assert "succeeded (link, initial)" in output and "succeeded (manual, incremental)" in output
        assert "succeeded (relink, incremental)" in output
        printed = _syncs_as_printed(output)
        assert [(s["trigger"], s["mode"]) for s in printed.values()] == [
            ("link", "initial"),
            ("manual", "incremental"),
            ("relink", "incremental"),
        ]

        # And it printed what a developer needs to go on by hand: the consent page, and a token the API accepts
        lines = output.splitlines()
        consent = next(line.split()[-1] for line in lines if line.strip().startswith("Xero consent page"))
        assert "/identity/connect/authorize?" in consent and "code_challenge_method=S256" in consent
        token = lines[next(i for i, line in enumerate(lines) if "dev token (" in line) + 1].strip()
        state = json.loads((tmp_path / "stack.json").read_text())
        listed = requests.get(f"{state['api']}/clients", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert listed.status_code == 200
        assert [c["name"] for c in listed.json()["items"]] == ["Kōwhai Trading Ltd"]

        # And every figure printed for each sync (per resource, the summary, the run line) is the run's as recorded
        client_id = listed.json()["items"][0]["clientId"]
        runs = requests.get(
            f"{state['api']}/clients/{client_id}/syncs", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert runs.status_code == 200
        _check_against_the_runs(printed, runs.json()["items"])
        assert requests.get(consent, timeout=30).status_code == 200  # the emulator's consent page itself

        # And the CLI finds the demo's client on the stack it left running
        status = _local(tmp_path, "status")
        assert status.returncode == 0, status.stderr
        assert "Kōwhai Trading Ltd" in status.stdout and "linked" in status.stdout
        history = _local(tmp_path, "history", "kōwhai")
        assert history.returncode == 0, history.stderr
        assert [t for t in ("relink", "manual", "link") if t in history.stdout] == ["relink", "manual", "link"]

        # And wrong input is a clear error with a non-zero exit code
        unknown = _local(tmp_path, "sync", "no-such-client")
        assert unknown.returncode == 2
        assert "unknown client 'no-such-client'" in unknown.stderr and "Kōwhai" in unknown.stderr
        assert _local(tmp_path, "org", "create", "--size", "enormous").returncode == 2

        # And a new organisation links, syncs (--wait, plain progress) and verifies through the CLI
        created = _local(tmp_path, "org", "create", "--name", "Tūī Ltd", "--size", "tiny")
        assert created.returncode == 0, created.stderr
        tenant = created.stdout.split("tenant ")[1].split()[0]
        linked = _local(tmp_path, "link", tenant, "--wait", timeout=300)
        assert linked.returncode == 0, linked.stdout + linked.stderr
        assert "1 organisation(s) linked." in linked.stdout and "succeeded (link" in linked.stdout
        changed = _local(tmp_path, "org", "change", "tūī", "--count", "5")
        assert changed.returncode == 0, changed.stderr
        synced = _local(tmp_path, "sync", "tūī", "--wait", timeout=300)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "succeeded (manual, incremental)" in synced.stdout
        for how in (["--ground-truth"], []):
            verified = _local(tmp_path, "verify", "tūī", *how, timeout=300)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert "stored data equals Xero" in verified.stdout
        exported = _local(tmp_path, "export", "tūī", "--out", str(tmp_path / "export"))
        assert exported.returncode == 0, exported.stderr
        assert (tmp_path / "export" / "Invoices.jsonl").read_text().count("\n") > 0
        unlinked = _local(tmp_path, "unlink", "tūī")
        assert unlinked.returncode == 0 and "unlinked" in unlinked.stdout, unlinked.stderr
        refused = _local(tmp_path, "sync", "tūī")
        assert refused.returncode == 1 and "client_not_linked" in refused.stderr

        # When Ctrl-C reaches the demo
        pids = [state["pid"], state["dynamodb"]["pid"], state["moto"]["pid"]]
        process.send_signal(signal.SIGINT)

        # Then it stops everything it started, and says so
        assert process.wait(timeout=60) == 0
        assert not any(_alive(pid) for pid in pids)
        assert not (tmp_path / "stack.json").exists()
        assert "stopping the local stack" in Path(log.name).read_text()
        with_no_stack = _local(tmp_path, "status")
        assert with_no_stack.returncode == 3 and "no local stack is running" in with_no_stack.stderr
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        log.close()


def test_a_demo_stopped_by_sigterm_in_its_initial_sync_stops_everything_it_started(tmp_path: Path) -> None:
    # Given a demo in its initial sync, its engines (DynamoDB Local, the moto server) in sessions of their own
    log = (tmp_path / "demo.out").open("w+")
    process = _start_demo(tmp_path, log)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + READY_BUDGET_SECONDS
        while "4. Initial sync" not in Path(log.name).read_text():
            assert process.poll() is None, f"the demo ended early ({process.returncode}):\n{Path(log.name).read_text()}"
            assert time.monotonic() < deadline, f"the demo did not reach its sync:\n{Path(log.name).read_text()}"
            time.sleep(0.2)
        state = json.loads((tmp_path / "stack.json").read_text())
        pids = [state["pid"], state["dynamodb"]["pid"], state["moto"]["pid"]]
        assert all(_alive(pid) for pid in pids)

        # When `kill` (SIGTERM) reaches the demo process alone
        process.send_signal(signal.SIGTERM)

        # Then it stops what it started, as Ctrl-C does, and says it was interrupted
        assert process.wait(timeout=60) == 130
        assert not any(_alive(pid) for pid in pids)
        output = Path(log.name).read_text()
        assert "interrupted" in output and "stopping the local stack" in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        for pid in filter(_alive, pids):  # engines a failing demo left behind: not left to the tests after this one
            os.kill(pid, signal.SIGKILL)
        log.close()
