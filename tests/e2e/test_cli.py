"""`python -m local up` / `token` / `nightly` / `down` from the command line, as a developer runs them."""

import json
import os
import signal
import time
from pathlib import Path
from typing import IO

import pytest
import requests

from local.cli.main import READY_LINE
from local.stack.provision import LOCAL_XERO_APP
from tests.e2e.helpers import drain, eventually, run_local, start_local_up, stop_local_up

pytestmark = pytest.mark.slow

STARTUP_BUDGET_SECONDS = 30  # the stack itself aims at < 10 s; CI machines are slower than laptops


def _read_until_ready(stream: IO[str], deadline: float) -> list[str]:
    lines = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith(READY_LINE):
            return lines
    raise AssertionError("the stack never said it was ready:\n" + "\n".join(lines))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0  # a zombie waiting for its parent


def test_up_serves_the_api_and_down_stops_every_process(tmp_path: Path) -> None:
    # Given `python -m local up` started on ephemeral ports, Xero's minute lasting a second
    process = start_local_up(tmp_path, "--time-scale", "60")
    try:
        assert process.stdout is not None
        output = _read_until_ready(process.stdout, time.monotonic() + STARTUP_BUDGET_SECONDS)
        drain(process)

        # Then it says where everything listens and writes its state file
        state = json.loads((tmp_path / "stack.json").read_text())
        assert state["pid"] == process.pid
        pids = [state["pid"], state["dynamodb"]["pid"], state["moto"]["pid"]]
        assert all(not _gone(pid) for pid in pids)
        assert any(state["api"] in line for line in output)
        assert any(state["dynamodb"]["endpoint"] in line for line in output)
        assert any(state["moto"]["endpoint"] in line for line in output)
        assert any(state["swagger"] in line for line in output)
        for endpoint in (state["api"], state["dynamodb"]["endpoint"], state["moto"]["endpoint"]):
            assert endpoint.startswith("http://127.0.0.1:")

        # And the Xero emulator runs, with the local Xero app registered for the console's callback page
        emulator = state["xero_emulator"]["url"]
        assert any(emulator in line for line in output)
        apps = requests.get(f"{emulator}/_emulator/apps", timeout=10).json()["apps"]
        (app,) = (a for a in apps if a["clientId"] == LOCAL_XERO_APP["client_id"])
        assert app["redirectUris"] == [f"{state['console']}/xero/callback"]
        assert app["hasSecret"]
        # And its rate-limit minute is a second, the functions (and the workers attached to the stack) told so
        config = requests.get(f"{emulator}/_emulator/config", timeout=10).json()
        assert config["rateLimits"]["timeScale"] == 60
        assert state["environment"]["XERO_MINUTE_SECONDS"] == "1"

        # And a token minted by the CLI opens the API
        minted = run_local(tmp_path, "token", "--practice", "cli-practice")
        assert minted.returncode == 0, minted.stderr
        response = requests.get(
            f"{state['api']}/clients", headers={"Authorization": f"Bearer {minted.stdout.strip()}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "nextCursor": None}
        assert requests.get(f"{state['api']}/clients", timeout=10).status_code == 401

        # And SIGUSR1 writes where each of its threads is (what a stack that does not stop is asked)
        os.kill(process.pid, signal.SIGUSR1)
        threads = tmp_path / "logs" / "threads.log"
        # The main thread, waiting in `up` for a stop, is in the dump
        assert eventually(lambda: threads.exists() and "local/cli/main.py" in threads.read_text(), timeout=10)
        assert process.poll() is None, "the stack runs on"

        # And the nightly schedule can be fired on the running stack
        nightly = run_local(tmp_path, "nightly")
        assert nightly.returncode == 0, nightly.stdout + nightly.stderr
        assert json.loads(nightly.stdout)["result"]["queued"] == 0

        # When `down` runs
        stopped = run_local(tmp_path, "down")

        # Then every process the stack started is gone, and so is the state file
        assert stopped.returncode == 0, stopped.stderr
        process.wait(timeout=20)
        assert all(_gone(pid) for pid in pids)
        assert not (tmp_path / "stack.json").exists()
    finally:
        if process.poll() is None:
            stop_local_up(process, tmp_path)


def test_up_runs_against_another_xero_and_export_and_verify_read_through_the_api(tmp_path: Path) -> None:
    from local.cli.stack_client import StackHandle
    from local.xero_emulator import EmulatorConfig, XeroEmulator

    # Given another Xero-compatible server (an emulator of its own stands in for a recorded or staging one)
    with XeroEmulator(EmulatorConfig()) as other:
        xero = other.base_url.rstrip("/")
        # When the stack is started against it
        process = start_local_up(tmp_path, "--xero-url", xero)
        try:
            assert process.stdout is not None
            output = _read_until_ready(process.stdout, time.monotonic() + STARTUP_BUDGET_SECONDS)
            drain(process)
            state = json.loads((tmp_path / "stack.json").read_text())
            # Then the emulator is off and the functions call that server
            assert state["xero_url"] == xero and not state["xero_emulator"].get("url")
            assert any(xero in line for line in output)
            assert state["template_parameters"]["XeroApiUrl"] == xero
            # And an organisation there links, through its consent and the console's callback, and syncs
            app = {
                "clientId": LOCAL_XERO_APP["client_id"],
                "clientSecret": LOCAL_XERO_APP["client_secret"],
                "redirectUris": [f"{state['console']}/xero/callback"],
            }
            requests.post(f"{xero}/_emulator/apps", json=app, timeout=10).raise_for_status()
            org = {"name": "Elsewhere Ltd", "seed": "elsewhere", "size": "tiny", "userId": "demo-user"}
            tenant = requests.post(f"{xero}/_emulator/orgs", json=org, timeout=60).json()["tenantId"]
            handle, practice = StackHandle.attach(tmp_path), "elsewhere-practice"
            authorize_url = handle.start_link(practice)
            consent = {"tenantIds": [tenant], "deny": False, "userId": "demo-user"}
            requests.post(f"{xero}/_emulator/consent", json=consent, timeout=10).raise_for_status()
            location = requests.get(authorize_url, allow_redirects=False, timeout=30).headers["Location"]
            (client_id,) = handle.complete_link(practice, location)["clientIds"]
            run = handle.first_run_after(practice, client_id, set(), timeout=60)
            assert handle.wait_for_run(practice, client_id, run["runId"], timeout=180)["status"] == "succeeded"

            # And export writes what the data API shows, and verify finds it equal to a full read of that server
            out = tmp_path / "export"
            exported = run_local(tmp_path, "export", client_id, "--practice", practice, "--out", str(out))
            assert exported.returncode == 0, exported.stderr
            invoices = [json.loads(line) for line in (out / "Invoices.jsonl").read_text().splitlines()]
            truth = requests.get(f"{xero}/_emulator/orgs/{tenant}/records/Invoices", timeout=30).json()["records"]
            assert {i["InvoiceID"]: i for i in invoices} == {t["InvoiceID"]: t for t in truth}
            verified = run_local(tmp_path, "verify", client_id, "--practice", practice)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert "stored data equals Xero" in verified.stdout
        finally:
            stop_local_up(process, tmp_path)
