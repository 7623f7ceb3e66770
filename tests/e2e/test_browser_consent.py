"""The consent flow in a real browser: headless Chromium (Debian's chromium + chromium-driver, installed by
`make test`) on the local stack started as a developer starts it (`python -m local up`): Xero's consent page, then
the console's callback page completing the link with the signed-in user's JWT (a cross-origin call to the API).
Screenshots of both pages are kept under test-artifacts/."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.cli.stack_client import StackHandle
from tests.e2e.browser import ARTIFACTS, TOKEN_KEY, chromium, local_stack, needs_chromium

pytestmark = needs_chromium


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[StackHandle]:
    with local_stack(tmp_path) as stack:
        yield stack


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


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

    # When the signed-in user opens Xero's authorize URL, ticks one organisation and presses Allow
    signed_in(browser, stack, stack.token(practice))
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

    # Then Xero sends the browser to the console's callback page, which completes the link as the signed-in user
    try:
        WebDriverWait(browser, 90).until(
            lambda b: b.find_element(By.ID, "outcome").get_attribute("data-state") != "working"
        )
    except TimeoutException:
        raise AssertionError(f"the browser stayed at {browser.current_url}:\n{browser.page_source[:2000]}") from None
    outcome = browser.find_element(By.ID, "outcome")
    assert (outcome.get_attribute("data-state"), outcome.get_attribute("data-code")) == ("linked", "linked")
    assert outcome.text.endswith("1 organisation(s) linked.")
    assert browser.current_url == f"{stack.state['console']}/xero/callback"  # the code left the address bar
    assert browser.save_screenshot(str(ARTIFACTS / "xero-callback-page.png"))

    # And the ticked organisation (only) is a linked client, with its first sync queued by the link
    clients = stack.clients(practice)
    assert [(c["name"], c["tenantId"], c["linkState"]) for c in clients] == [("Pōhutukawa Ltd", wanted, "linked")]
    assert outcome.get_attribute("data-client-ids") == clients[0]["clientId"]
    runs = stack.runs(practice, clients[0]["clientId"])
    assert [r["trigger"] for r in runs] == ["link"]
    assert runs[0]["status"] in ("queued", "running", "succeeded")


def test_the_callback_page_of_someone_elses_link_links_nothing(running_stack: StackHandle, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    stack, practice = running_stack, "browser-practice-b"
    # Given a link started by a user of the practice and approved in Xero by someone they sent it to
    theirs = stack.create_org("Kauri Ltd", "tiny", seed="browser")["tenantId"]
    authorize_url = stack.start_link(practice)
    stack.emulator_admin("POST", "/consent", json={"tenantIds": [theirs], "deny": False})
    callback_url = stack.session.get(authorize_url, allow_redirects=False, timeout=30).headers["Location"]

    # When that person's browser, signed in as another user of another practice, lands on the callback page
    signed_in(browser, stack, stack.token("another-practice", "another-user"))
    browser.get(callback_url)

    # Then the page says the link was someone else's, and nothing is linked in either practice
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "outcome").get_attribute("data-code"))
    outcome = browser.find_element(By.ID, "outcome")
    assert (outcome.get_attribute("data-state"), outcome.get_attribute("data-code")) == ("failed", "state_mismatch")
    assert "started by someone else" in outcome.text
    assert stack.clients(practice) == [] and stack.clients("another-practice") == []


def signed_in(browser: Any, stack: StackHandle, token: str) -> None:
    """What the console's sign-in leaves behind: the user's JWT in the console origin's session storage."""
    browser.get(f"{stack.state['console']}/config.json")
    browser.execute_script(f"sessionStorage.setItem('{TOKEN_KEY}', arguments[0])", token)
