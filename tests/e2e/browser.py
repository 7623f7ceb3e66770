"""What the browser tests share: a local stack started as a developer starts it (`python -m local up`, a subprocess
on ports of its own) and headless Chromium (Debian's chromium + chromium-driver) with its console log readable."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.cli.main import READY_LINE
from local.cli.stack_client import StackHandle
from local.stack.template import REPO_ROOT
from tests.e2e.helpers import drain, start_local_up, stop_local_up

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts"
TOKEN_KEY = "xero-sync.token"  # where web/js/api.js keeps the signed-in user's JWT (sessionStorage)
# Without the background-networking flags Chromium's connections are refused on this machine.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,900",
)

needs_chromium = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="needs Debian's chromium and chromium-driver: `make chromium` (make test installs them)",
)


@contextlib.contextmanager
def local_stack(state_dir: Path, *options: str) -> Iterator[StackHandle]:
    process = start_local_up(state_dir, *options)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith(READY_LINE):
                break
        else:
            raise AssertionError("the stack never said it was ready:\n" + "".join(lines))
        drain(process)
        yield StackHandle.attach(state_dir)
    finally:
        stop_local_up(process, state_dir)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, read with get_log
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
