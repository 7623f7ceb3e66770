"""The consent flow in a real browser: headless Chromium (Debian's chromium + chromium-driver, installed by
`make test`) on the local stack started as a developer starts it (`python -m local up`). A screenshot of the consent
page is kept under test-artifacts/."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.__main__ import READY_LINE
from local.cli_stack import StackHandle
from local.template import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts"
FRONTEND_URL = "http://127.0.0.1:3000/xero/linked"  # the local stack's front-end placeholder: nothing need listen
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

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="needs Debian's chromium and chromium-driver: `make chromium` (make test installs them)",
)


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[StackHandle]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "XERO_"))}
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [
            sys.executable,
            "-m",
            "local",
            "--state-dir",
            str(tmp_path),
            "up",
            "--api-port",
            "0",
            "--emulator-port",
            "0",
            "--no-schedules",
        ],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith(READY_LINE):
                break
        else:
            raise AssertionError("the stack never said it was ready:\n" + "".join(lines))
        yield StackHandle.attach(tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=90)  # a stop is bounded (children get SIGKILL after 10 s), a loaded machine is slow


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_user_ticks_an_organisation_on_the_consent_page_and_the_client_is_linked_and_queued_for_sync(
    running_stack: StackHandle, browser: Any
) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    stack, practice = running_stack, "browser-practice"
    # Given two organisations at Xero for the signed-in user, and a link started through our API
    wanted = stack.create_org("Pōhutukawa Ltd", "tiny", seed="browser")["tenantId"]
    other = stack.create_org("Rimu Ltd", "tiny", seed="browser")["tenantId"]
    authorize_url = stack.start_link(practice)

    # When the user opens Xero's authorize URL, ticks one organisation and presses Allow
    browser.get(authorize_url)
    checkbox = WebDriverWait(browser, 30).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, f"input[name=tenantId][value='{wanted}']"))
    )
    assert browser.find_elements(By.CSS_SELECTOR, f"input[name=tenantId][value='{other}']")
    assert browser.find_element(By.CSS_SELECTOR, "button#deny").is_displayed()
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "consent-page.png"))
    if not checkbox.is_selected():
        checkbox.click()
    browser.find_element(By.CSS_SELECTOR, "button#allow").click()

    # Then Xero redirects to our callback, which sends the browser on to the front end with the outcome
    # (the API is asked once the browser has arrived: a poll during the callback once made it answer JSON)
    try:
        WebDriverWait(browser, 90).until(lambda b: "outcome=" in b.current_url)
    except TimeoutException:
        raise AssertionError(f"the browser stayed at {browser.current_url}:\n{browser.page_source[:2000]}") from None
    frontend = browser.current_url
    assert frontend.startswith(FRONTEND_URL) and "outcome=linked" in frontend, frontend

    # And the ticked organisation (only) is a linked client, with its first sync queued by the link
    clients = stack.clients(practice)
    assert [(c["name"], c["tenantId"], c["linkState"]) for c in clients] == [("Pōhutukawa Ltd", wanted, "linked")]
    runs = stack.runs(practice, clients[0]["clientId"])
    assert [r["trigger"] for r in runs] == ["link"]
    assert runs[0]["status"] in ("queued", "running", "succeeded")
