"""`python -m local.xero_emulator` starts a server, registers the default app, and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.xero_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--time-scale",
            "60",
            "--latency-ms",
            "1",
            "--client-id",
            "cli-app",
            "--client-secret",
            "cli-secret",
            "--redirect-uri",
            "http://localhost:9/cb",
            "--redirect-uri",
            "http://localhost:9/cb2",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        base = match.group(1)
        assert requests.get(f"{base}/_emulator/health", timeout=10).json() == {"status": "ok"}
        apps = requests.get(f"{base}/_emulator/apps", timeout=10).json()["apps"]
        assert apps == [
            {
                "clientId": "cli-app",
                "hasSecret": True,
                "name": "Xero Emulator App",
                "redirectUris": ["http://localhost:9/cb", "http://localhost:9/cb2"],
            }
        ]
        config = requests.get(f"{base}/_emulator/config", timeout=10).json()
        assert config["rateLimits"]["timeScale"] == 60 and config["latencyMs"] == 1
    finally:
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "stopped" in out
