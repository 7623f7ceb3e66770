"""The practice console (web/) in a real browser, the whole story on one local stack (`python -m local up`): sign in,
add a client through Xero's consent, the initial sync, Sync Now on the Client Overview, Sync with Xero from the
Client List's options menu, the Xero Organisation view, unlink, relink, another practice's view, the app disconnected
at Xero, delete. The steps are tests of one module, run in order on one stack and one browser; each ends with no
error in the browser's console, and every screen passes axe-core with no serious or critical violation.

Screenshots (test-artifacts/, linked from docs/testing.md): console-sign-in.png, console-xero-consent.png,
console-xero-callback.png, console-client-list.png, console-client-overview-syncing.png, console-client-overview.png,
console-xero-organisation.png, console-unlink-confirmation.png, console-client-list-unlinked.png,
console-client-overview-relinked.png, console-other-practice.png, console-client-list-needs-relink.png,
console-client-list-empty.png."""

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.cli.stack_client import StackHandle
from local.stack.template import REPO_ROOT
from tests.e2e.browser import ARTIFACTS, chromium, local_stack, needs_chromium

pytestmark = needs_chromium

PRACTICE, USER = "console-practice", "ana"
OTHER_PRACTICE, OTHER_USER = "other-practice", "bo"
ORG_NAME = "Pōhutukawa Ltd"
# axe-core, pinned in the Makefile and installed into .tools by `make install` (AXE_CORE_JS points elsewhere).
AXE_JS = Path(os.environ.get("AXE_CORE_JS", REPO_ROOT / ".tools/node_modules/axe-core/axe.min.js"))


@dataclass
class Story:
    stack: StackHandle
    browser: Any
    tenant: str = ""
    client_id: str = ""

    @property
    def console(self) -> str:
        return str(self.stack.state["console"])

    # --- the browser --------------------------------------------------------------------------------------------
    def until(self, condition: Callable[[Any], Any], what: str, timeout: float = 60) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.wait import WebDriverWait

        # The screens re-render while a sync runs: an element found a moment ago may be gone, so look again.
        wait = WebDriverWait(self.browser, timeout, 0.1, ignored_exceptions=[StaleElementReferenceException])
        try:
            return wait.until(condition)
        except TimeoutException:
            page = self.browser.find_element("tag name", "body").text[:1500]
            raise AssertionError(f"waited {timeout} s for {what}; at {self.browser.current_url}:\n{page}") from None

    def find(self, css: str, timeout: float = 30) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions

        return self.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css)), css, timeout)

    def text(self, css: str) -> str:
        """What the elements matching `css` say, read in one go (no element handle to go stale)."""
        script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText).join(' ');"
        return str(self.browser.execute_script(script, css))

    def card(self) -> Any:
        return self.find(f"li.card[data-client-id='{self.client_id}']")

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        assert self.browser.save_screenshot(str(ARTIFACTS / name))

    def accessible(self, screen: str) -> None:
        """axe-core on the page as it is: no serious or critical violation."""
        if not AXE_JS.exists():
            pytest.fail(f"axe-core is missing at {AXE_JS}: `make install` puts it in .tools")
        self.browser.execute_script(AXE_JS.read_text())
        results = self.browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then((r) => done(r.violations), (e) => done(String(e)));"
        )
        assert isinstance(results, list), results
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{screen}: " + "\n".join(bad)

    def no_console_errors(self, *expected: str) -> None:
        """Nothing logged at SEVERE since the last look (get_log empties the buffer), but for `expected` network
        answers (a 404 this step provokes on purpose). Xero's (the emulator's) consent page has no favicon: that 404
        is Xero's page, not the console."""
        expected = (*expected, f"{self.stack.emulator}/favicon.ico")
        errors = [
            entry["message"]
            for entry in self.browser.get_log("browser")
            if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in expected)
        ]
        assert not errors, "the browser's console logged errors:\n" + "\n".join(errors)

    def consent(self) -> None:
        """Xero's (the emulator's) consent page: tick the organisation, Allow."""
        checkbox = self.find(f"input[name=tenantId][value='{self.tenant}']")
        if not checkbox.is_selected():
            checkbox.click()
        self.find("button#allow").click()

    def sign_in(self, practice: str, user: str) -> None:
        from selenium.webdriver.common.keys import Keys

        self.browser.get(f"{self.console}/#/sign-in")
        for name, value in (("practice", practice), ("user", user)):
            box = self.find(f"input#{name}")
            box.clear()
            box.send_keys(value)
        box.send_keys(Keys.ENTER)  # the keyboard submits the form
        self.until(lambda b: "Client List" in self.text("h1"), "the Client List after sign-in")

    def options(self, action: str) -> None:
        """The card's options menu, by keyboard: Enter opens it (focus moves to its first action), Tab moves on."""
        from selenium.webdriver.common.keys import Keys

        self.card().find_element("css selector", "button.options").send_keys(Keys.ENTER)
        for _ in range(3):
            focused = self.browser.switch_to.active_element
            if focused.get_attribute("data-action") == action:
                focused.send_keys(Keys.ENTER)
                return
            focused.send_keys(Keys.TAB)
        raise AssertionError(f"no {action} in the options menu")

    def confirm(self) -> None:
        self.find("dialog[open] button[value=confirm]").click()
        self.until(lambda b: not b.find_elements("css selector", "dialog[open]"), "the dialog to close")

    # --- the API and Xero, beside the browser -------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        return self.stack.runs(PRACTICE, self.client_id)

    def wait_for_run(self, trigger: str, count: int, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs() if r["trigger"] == trigger]
            if len(runs) >= count and runs[0]["status"] in ("succeeded", "failed"):
                return runs[0]
            time.sleep(0.5)
        raise AssertionError(f"no finished {trigger} run #{count}: {self.runs()}")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    # The story syncs one organisation four times in a minute or so: on Xero's real minute the third waits the rest of
    # it out. The console is tested here, not pacing: Xero's minute lasts a second.
    with local_stack(tmp_path_factory.mktemp("console-stack"), "--time-scale", "60") as stack, chromium() as browser:
        yield Story(stack, browser)


def test_1_a_user_signs_in_to_the_local_stack(story: Story) -> None:
    # Given the console, nobody signed in
    story.browser.get(story.console)
    # Then it asks who signs in
    story.find("input#practice")
    assert story.browser.current_url.endswith("#/sign-in")
    story.screenshot("console-sign-in.png")
    story.accessible("sign-in")
    # When a practice and a user are picked, Then the (empty) Client List of that practice shows
    story.sign_in(PRACTICE, USER)
    story.until(lambda b: "No clients yet" in story.text("ul.cards"), "the empty list")
    assert f"{USER} · {PRACTICE}" in story.text("#who")
    story.accessible("empty client list")
    story.no_console_errors()


def test_2_add_client_through_xero_consent_and_the_initial_sync(story: Story) -> None:
    # Given an organisation at Xero (more invoices than a page of the Xero Organisation view)
    org = story.stack.emulator_admin(
        "POST", "/orgs", json={"name": ORG_NAME, "seed": "console", "size": "tiny", "counts": {"Invoices": 45}}
    )
    story.tenant = org["tenantId"]
    # When Add client is pressed and the organisation is ticked on Xero's consent page
    story.find("#add-client").click()
    story.find(f"input[name=tenantId][value='{story.tenant}']")
    story.screenshot("console-xero-consent.png")
    story.consent()
    # Then the callback page says it is linked
    story.until(lambda b: story.find("#outcome").get_attribute("data-state") != "working", "the link's outcome")
    outcome = story.find("#outcome")
    assert (outcome.get_attribute("data-state"), outcome.get_attribute("data-code")) == ("linked", "linked")
    story.client_id = outcome.get_attribute("data-client-ids")
    assert "first sync has started" in story.text("#next")
    story.screenshot("console-xero-callback.png")
    story.accessible("xero callback")
    # And back on the Client List its card has a closed padlock and, once the initial sync is over, its last sync
    story.find("#back").click()
    card = story.card()
    assert "Linked to Xero" in card.find_element("css selector", ".padlock").text
    assert card.find_element("css selector", "h2").text == ORG_NAME
    story.until(lambda b: story.card().find_elements("css selector", ".last-sync time"), "the last sync", 180)
    last_sync = story.card().find_element("css selector", ".last-sync time")
    assert last_sync.text in ("just now", "now") or "second" in last_sync.text, last_sync.text
    assert last_sync.get_attribute("title")  # the exact time on hover
    assert story.wait_for_run("link", 1)["status"] == "succeeded"
    story.screenshot("console-client-list.png")
    story.accessible("client list")
    story.no_console_errors()


def sync_now_disabled(browser: Any) -> str:
    return str(browser.find_element("css selector", "#sync-now").get_attribute("aria-disabled"))


def test_3_sync_now_on_the_client_overview_shows_progress_to_the_end(story: Story) -> None:
    # Given changes made in Xero, and a Xero slow enough to watch
    story.stack.change_org(story.tenant, 12, seed=3)
    story.stack.emulator_admin("POST", "/config", json={"latencyMs": 150})
    try:
        # When the card is opened and Sync Now pressed
        story.card().find_element("css selector", "h2 a").click()
        story.until(lambda b: "Client Overview" in story.text("h1"), "the Client Overview")
        story.find("#sync-now").click()
        # Then the button cannot be pressed while the sync is queued or running (aria-disabled: it keeps the focus),
        # and a progress bar shows
        story.until(lambda b: sync_now_disabled(b) == "true", "Sync Now disabled")
        seen = story.until(lambda b: b.find_elements("css selector", ".live progress"), "the progress bar", 30)
        assert seen
        story.screenshot("console-client-overview-syncing.png")
    finally:
        story.stack.emulator_admin("POST", "/config", json={"latencyMs": 0})
    # And it ends: the button is back, the history lists the run with what it changed
    story.until(lambda b: sync_now_disabled(b) == "false", "the sync's end", 180)
    run = story.wait_for_run("manual", 1)
    assert run["status"] == "succeeded"
    row = story.find(f"#sync-history tr[data-run-id='{run['runId']}']")
    assert row.get_attribute("data-status") == "succeeded" and "Sync Now" in row.text
    assert "No sync is running." in story.text(".live")
    story.screenshot("console-client-overview.png")
    story.accessible("client overview")
    story.no_console_errors()


def test_4_sync_with_xero_from_the_client_lists_options_menu(story: Story) -> None:
    # Given the Client List
    story.find("main a[href='#/clients']").click()
    story.card()
    # When Sync with Xero is chosen in the card's options menu (by keyboard)
    story.options("sync")
    # Then the list says so, and the sync runs to its end
    story.until(lambda b: "started" in story.text("#notice"), "the notice")
    assert story.wait_for_run("manual", 2)["status"] == "succeeded"
    story.until(lambda b: not story.card().get_attribute("data-run-status"), "the card's sync to end", 60)
    story.no_console_errors()


def test_5_the_xero_organisation_view_pages_through_invoices(story: Story) -> None:
    # When the Xero Organisation view of the client is opened, and Invoices chosen
    story.browser.get(f"{story.console}/#/clients/{story.client_id}")
    story.find("#xero-organisation").click()
    story.find("#resources a[href$='/xero/Invoices']").click()
    # Then its records show a page at a time
    story.until(lambda b: b.find_elements("css selector", "#records table tbody tr"), "the invoices")
    assert story.find("#records").get_attribute("data-page") == "1"
    story.find("#records-next").click()
    story.until(lambda b: story.find("#records").get_attribute("data-page") == "2", "page 2")
    story.screenshot("console-xero-organisation.png")
    story.accessible("xero organisation")
    story.no_console_errors()


def test_6_unlink_keeps_the_data_and_shows_an_open_padlock(story: Story) -> None:
    # Given the Client Overview
    story.browser.get(f"{story.console}/#/clients/{story.client_id}")
    story.find("#unlink").click()
    # When Unlink from Xero is confirmed (the dialog says the data stays, frozen)
    assert "stays" in story.text("dialog[open]") and "frozen" in story.text("dialog[open]")
    story.screenshot("console-unlink-confirmation.png")
    story.accessible("unlink confirmation")
    story.confirm()
    # Then the padlock is open, Link to Xero is offered, and the data is still listed
    story.until(lambda b: "Not linked to Xero" in story.text(".padlock"), "the open padlock")
    story.find("#link")
    assert "Xero records imported" in story.text("details.counts summary")
    assert story.find("#sync-history").text != ""
    # And so on the Client List
    story.find("main a[href='#/clients']").click()
    card = story.card()
    assert card.get_attribute("data-link-state") == "unlinked"
    assert "Not linked to Xero" in card.text and "Link to Xero" in card.text
    story.screenshot("console-client-list-unlinked.png")
    story.accessible("client list, unlinked")
    story.no_console_errors()


def test_7_relink_through_xero_syncs_and_closes_the_padlock(story: Story) -> None:
    # When Link to Xero is pressed on the card and the organisation is ticked again at Xero
    story.card().find_element("css selector", ".card-actions button.primary").click()
    story.consent()
    # Then the browser comes back to the client's overview, relinked, and a sync follows
    story.until(lambda b: b.current_url.endswith(f"#/clients/{story.client_id}"), "the client's overview")
    story.until(lambda b: "Relinked." in story.text("#notice"), "the relink notice")
    story.until(lambda b: "Linked to Xero" in story.text(".padlock"), "the closed padlock")
    assert story.wait_for_run("relink", 1)["status"] == "succeeded"
    story.until(lambda b: b.find_elements("css selector", "#sync-history tr[data-trigger=relink]"), "the relink run")
    story.screenshot("console-client-overview-relinked.png")
    story.accessible("client overview, relinked")
    story.no_console_errors()


def test_8_another_practice_sees_none_of_these_clients(story: Story) -> None:
    # When another practice's user signs in
    story.find("#sign-out").click()
    story.find("input#practice")
    story.sign_in(OTHER_PRACTICE, OTHER_USER)
    # Then their Client List is empty, and the first practice's client is not found for them
    story.until(lambda b: "No clients yet" in story.text("ul.cards"), "the other practice's empty list")
    assert ORG_NAME not in story.text("main")
    story.screenshot("console-other-practice.png")
    story.browser.get(f"{story.console}/#/clients/{story.client_id}")
    story.until(lambda b: story.text("main .error"), "the overview's refusal")
    assert ORG_NAME not in story.text("main")
    assert story.stack.clients(OTHER_PRACTICE) == []
    story.no_console_errors(f"/clients/{story.client_id}")  # the 404 this step asks for
    story.find("#sign-out").click()
    story.sign_in(PRACTICE, USER)


def test_9_an_app_disconnected_at_xero_asks_for_a_relink_after_the_next_sync(story: Story) -> None:
    # Given the app removed from Xero's side (the organisation's connection)
    connections = story.stack.emulator_admin("GET", "/connections")["connections"]
    for connection in connections:
        if connection["tenantId"] == story.tenant:
            story.stack.emulator_admin("POST", f"/connections/{connection['id']}/disconnect")
    # When the next sync runs (Sync with Xero from the options menu)
    story.card()
    story.options("sync")
    story.wait_for_run("manual", 3)
    # Then the card asks for a relink, with the reason
    story.until(lambda b: story.card().get_attribute("data-link-state") == "needs_relink", "needs relink", 60)
    story.browser.refresh()
    story.until(lambda b: story.card().find_elements("css selector", ".warning"), "the reason")
    card = story.card()
    assert "Needs relinking to Xero" in card.text and "Link to Xero" in card.text
    story.screenshot("console-client-list-needs-relink.png")
    story.accessible("client list, needs relink")
    story.no_console_errors()


def test_10_delete_client(story: Story) -> None:
    # When Delete client is chosen in the card's options menu and confirmed
    story.options("delete")
    assert "cannot be undone" in story.text("dialog[open]")
    story.confirm()
    # Then the card goes, and the practice has no client left
    story.until(lambda b: "being deleted" in story.text("#notice"), "the notice")
    story.until(lambda b: not b.find_elements("css selector", "li.card"), "the card to go")
    assert story.stack.clients(PRACTICE) == []
    story.screenshot("console-client-list-empty.png")
    story.no_console_errors()
