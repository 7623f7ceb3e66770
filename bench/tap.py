"""Singer's tap-xero, run against the same emulated organisations as our sync: in its own virtualenv (.venv-tap, made
by the Makefile), through bench/tap_xero_emulated.py, with an app and a connection of its own (Xero counts limits
per app and organisation, as two tools a practice runs would see them).

A run is `tap-xero --config --catalog [--state]`: the catalogue selects every stream, the state is the one its
previous run ended with (its bookmarks), so a second run is the tap's incremental sync. Records are counted from
its RECORD messages (what a Singer target would write)."""

import json
import os
import re
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlparse

from bench.stack import BenchStack
from local.stack.template import REPO_ROOT

TAP_VENV = REPO_ROOT / ".venv-tap"
TAP_PYTHON = TAP_VENV / "bin" / "python"
WRAPPER = Path(__file__).with_name("tap_xero_emulated.py")
TAP_APP = {
    "clientId": "tap-xero-bench",
    "clientSecret": "tap-xero-bench-secret",
    "redirectUris": ["http://127.0.0.1:9/tap-xero/callback"],
    "name": "tap-xero (benchmark)",
}
TAP_SCOPES = (
    "offline_access accounting.settings.read accounting.contacts.read accounting.transactions.read "
    "accounting.journals.read"
)
_RECORD = re.compile(r'^\{"type": "RECORD", "stream": "(\w+)"')


@dataclass
class TapConnection:
    tenant_id: str
    workdir: Path
    state: dict[str, Any] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "config.json"

    @property
    def catalog(self) -> Path:
        return self.workdir / "catalog.json"


@dataclass
class TapRun:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    records: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "peakRssMb": self.peak_rss_mb,
            "cpuSeconds": self.cpu_seconds,
            "recordsWritten": sum(self.records.values()),
        }


class TapXero:
    def __init__(self, bench: BenchStack, workdir: Path) -> None:
        if not TAP_PYTHON.exists():
            raise FileNotFoundError(f"tap-xero's virtualenv is missing ({TAP_VENV}): run `make bench`, which makes it")
        self.bench = bench
        self.workdir = workdir
        bench.api.emulator_admin("POST", "/apps", json=TAP_APP)

    def connect(self, tenant_id: str) -> TapConnection:
        """Authorises the tap's app for the organisation (as its user would) and writes its config and catalogue."""
        emulator = self.bench.api
        redirect = TAP_APP["redirectUris"][0]
        emulator.emulator_admin("POST", "/consent", json={"tenantIds": [tenant_id], "deny": False})
        answer = emulator.session.get(
            f"{self.bench.emulator_url}/identity/connect/authorize",
            params={
                "response_type": "code",
                "client_id": TAP_APP["clientId"],
                "redirect_uri": redirect,
                "scope": TAP_SCOPES,
                "state": "bench",
            },
            allow_redirects=False,
            timeout=30,
        )
        code = dict(parse_qsl(urlparse(answer.headers["Location"]).query))["code"]
        tokens = emulator.session.post(
            f"{self.bench.emulator_url}/connect/token",
            auth=(TAP_APP["clientId"], TAP_APP["clientSecret"]),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
            timeout=30,
        ).json()
        connection = TapConnection(tenant_id, self.workdir / tenant_id)
        connection.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "client_id": TAP_APP["clientId"],
            "client_secret": TAP_APP["clientSecret"],
            "tenant_id": tenant_id,
            "refresh_token": tokens["refresh_token"],
            "start_date": "2000-01-01T00:00:00Z",
            "include_archived_contacts": True,  # as our sync imports them
        }
        connection.config.write_text(json.dumps(config))
        catalog = json.loads(self._tap(connection, ["--discover"], "discover")[0])
        for stream in catalog["streams"]:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = True
        connection.catalog.write_text(json.dumps(catalog))
        return connection

    def run(self, connection: TapConnection, label: str) -> TapRun:
        """One sync from the connection's state (none: the initial sync); the state it ends with is kept."""
        arguments = ["--catalog", str(connection.catalog)]
        if connection.state is not None:
            state_file = connection.workdir / "state.json"
            state_file.write_text(json.dumps(connection.state))
            arguments += ["--state", str(state_file)]
        report_file = connection.workdir / f"{label}.report.json"
        _, records, state = self._tap(connection, arguments, label, report_file)
        connection.state = state if state is not None else connection.state
        report = json.loads(report_file.read_text())
        return TapRun(report["seconds"], report["peakRssMb"], report["cpuSeconds"], records)

    def _tap(
        self, connection: TapConnection, arguments: list[str], label: str, report: Path | None = None
    ) -> tuple[str, Counter[str], dict[str, Any] | None]:
        command = [str(TAP_PYTHON), str(WRAPPER), self.bench.emulator_url, "--config", str(connection.config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        if report is not None:
            env["BENCH_TAP_REPORT"] = str(report)
        log = self.bench.state_dir / "logs" / f"tap-{label}.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(  # noqa: S603 - tap-xero's interpreter, our wrapper
                [*command, *arguments], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
            )
            assert process.stdout is not None
            reader = _Messages(process.stdout)
            thread = threading.Thread(target=reader.read, daemon=True)
            thread.start()
            code = process.wait()
            thread.join()
        if code != 0:
            raise RuntimeError(f"tap-xero exited with {code}: see {log}")
        return reader.other, reader.records, reader.state


class _Messages:
    """Reads the tap's stdout as it goes (so it never blocks on a full pipe): RECORD messages are counted by stream,
    the last STATE kept, anything else (discovery's catalogue) kept as text."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.records: Counter[str] = Counter()
        self.state: dict[str, Any] | None = None
        self.other = ""

    def read(self) -> None:
        lines = []
        for line in self.stream:
            match = _RECORD.match(line)
            if match:
                self.records[match.group(1)] += 1
            elif line.startswith('{"type": "STATE"'):
                self.state = json.loads(line)["value"]
            elif not line.startswith('{"type": "SCHEMA"'):
                lines.append(line)
        self.other = "".join(lines)
