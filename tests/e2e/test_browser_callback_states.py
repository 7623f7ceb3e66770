"""The Xero callback page (web/xero-callback.html) and the console's answers to the API states a user meets between
calls, in a real browser on the API double (api_double.py): the gateway refusing a token whose exp is still ahead
(revoked, another audience, a browser clock behind), a practice going over its request limit in the middle of a
consent (between Xero's redirect and the callback page's POST), the API out of reach, a config.json failing once.
Answers are shaped as the API's (schemas.py, limits.py, docs/link-flow.md)."""

import json

import pytest

from tests.e2e.api_double import TIMED_OUT, Page
from tests.e2e.browser import TOKEN_KEY, needs_chromium

pytestmark = needs_chromium

CLIENT_ID = "6f1d8f3e-5b1c-4d55-9a4e-2f0a7c1b9e01"
STATE, CODE = "c3RhdGUtb2YtYS1saW5rLXN0YXJ0ZWQtYnktYW5h", "xero-authorization-code-1"
LINKED = {"outcome": "linked", "code": "linked", "message": "1 organisation(s) linked.", "clientIds": [CLIENT_ID]}
# limits.py's 429: its message and Retry-After
RATE_LIMITED = (
    429,
    {"error": {"code": "rate_limited", "message": "this practice made 60 such requests in 60 s; try again in 12 s"}},
    {"Retry-After": "12"},
)
NO_CLIENTS = (200, {"items": [], "nextCursor": None})


def outcome(page: Page) -> tuple[str, str]:
    """The callback page's outcome once it is no longer working: (its state, what it says)."""
    state = page.until(
        lambda b: (s := b.find_element("id", "outcome").get_attribute("data-state")) != "working" and s,
        "the callback page's outcome",
    )
    return state, page.text("#outcome")


def callback_query() -> str:
    return f"/xero/callback?code={CODE}&state={STATE}"


def test_a_completion_refused_by_the_practice_limit_is_kept_and_try_again_finishes_the_link(page: Page) -> None:
    # Given a practice over its request limit when Xero sends the user back (the 429 comes before the state is read)
    page.api.answer("POST", "/xero/link-completions", RATE_LIMITED, (200, LINKED))
    page.open(callback_query())

    # Then the page says when to try again, once, in the console's words, and keeps the link
    state, said = outcome(page)
    assert state == "waiting"
    assert said.startswith("Too many requests from your practice right now. Try again in 12 seconds (at ")
    assert said.count("ry again") == 1
    assert page.text("#next") == "The link is kept: press Try again to finish it."
    assert page.browser.current_url == f"{page.console.url}/xero/callback"  # the code left the address bar

    # When the user presses Try again, the link is finished with one more POST of the same code and state
    page.browser.find_element("id", "retry").click()
    assert outcome(page) == ("linked", "1 organisation(s) linked.")
    assert page.api.posts("/xero/link-completions") == [{"state": STATE, "code": CODE}] * 2
    assert not page.browser.find_element("id", "retry").is_displayed()


def test_a_completion_that_could_not_reach_the_api_is_kept_and_try_again_finishes_the_link(page: Page) -> None:
    page.api.answer("POST", "/xero/link-completions", (200, LINKED))
    page.api.offline = True
    page.open(callback_query())

    state, said = outcome(page)
    assert (state, said) == ("waiting", "The API could not be reached. Check your connection and try again.")
    assert page.browser.find_element("id", "retry").is_displayed()

    page.api.offline = False
    page.browser.find_element("id", "retry").click()
    assert outcome(page) == ("linked", "1 organisation(s) linked.")
    assert page.api.posts("/xero/link-completions") == [{"state": STATE, "code": CODE}]


def test_a_completion_whose_answer_was_lost_may_have_linked_and_offers_the_client_list_before_try_again(
    page: Page,
) -> None:
    # Given a completion the API took but whose answer never came back readable (the gateway's own 503, a function
    # that did not answer in time, maybe after linking): its state may be used up
    page.api.answer("POST", "/xero/link-completions", TIMED_OUT)
    page.open(callback_query())

    state, said = outcome(page)
    assert (state, said) == ("waiting", "The API did not answer: the organisation may be linked all the same.")
    # Then the Client List, where the organisation shows if it is linked, is offered first, then Try again
    offered = page.js(
        "return [...document.querySelectorAll('#next a, #retry')].filter((e) => e.checkVisibility())"
        ".map((e) => e.textContent)"
    )
    assert offered == ["Open the Client List", "Try again"]
    assert page.browser.find_element("css selector", "#next a").get_attribute("href") == f"{page.console.url}/#/clients"
    assert "already used" in page.text("#next"), "what Try again says if the link had finished"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((500, {"error": {"code": "internal_error", "message": "something went wrong on our side"}}), None),
        ((200, {"outcome": "linked"}), "Something went wrong. Try again."),  # an answer without its clientIds
    ],
    ids=["internal-error", "an-answer-without-its-clients"],
)
def test_a_completion_that_failed_for_no_code_the_page_knows_says_so_and_where_to_look(
    page: Page, answer: tuple[int, dict], said: str | None
) -> None:
    # Given a completion the API answered with a code the page has no next step for, or with a body it cannot read
    page.api.answer("POST", "/xero/link-completions", answer)
    page.open(callback_query())
    # Then it fails in the API's fixed words, or the console's (never a script's error), and points to the Client
    # List, which shows whether anything was linked
    state, text = outcome(page)
    assert (state, text) == ("failed", said or answer[1]["error"]["message"])
    assert page.text("#next").startswith("Open the Client List to see what is linked")
    assert page.browser.find_element("css selector", "#next a").get_attribute("href") == f"{page.console.url}/#/clients"


def test_a_completion_whose_token_the_gateway_refuses_is_kept_for_after_signing_in(page: Page) -> None:
    # Given a token whose exp is an hour ahead, but that the gateway refuses (a 401 the browser cannot read)
    page.api.refuse_tokens = True
    page.open(callback_query())

    state, said = outcome(page)
    assert (state, said) == ("failed", "Your session has ended. Sign in again to finish linking.")
    assert page.text("#next") == "Sign in"
    assert json.loads(page.stored("xero-sync.pending-link")) == {"state": STATE, "code": CODE}


def test_a_reload_after_the_link_finished_does_not_say_it_failed(page: Page) -> None:
    page.api.answer("POST", "/xero/link-completions", (200, LINKED))
    page.open(callback_query())
    assert outcome(page) == ("linked", "1 organisation(s) linked.")

    page.browser.refresh()

    state, said = outcome(page)
    assert (state, said) == ("done", "Nothing left to finish here.")
    assert "again" not in page.text("#next")
    assert len(page.api.posts("/xero/link-completions")) == 1


def test_a_token_the_gateway_refuses_before_its_exp_leads_to_the_sign_in(page: Page) -> None:
    page.api.answer("GET", "/clients", NO_CLIENTS)
    page.api.refuse_tokens = True
    page.open("/#/clients")

    page.until(lambda b: b.execute_script("return location.hash") == "#/sign-in", "the sign-in")
    assert page.text("#notice") == "The API no longer accepts your session. Sign in again."
    assert page.stored(TOKEN_KEY) is None


def test_a_token_a_minute_from_its_exp_is_not_sent_and_leads_to_the_sign_in(page: Page) -> None:
    # The browser's clock may be behind the gateway's: a token 30 s from its exp may already be refused there
    page.api.answer("GET", "/clients", NO_CLIENTS)
    page.open("/#/clients", expires_in=30)

    page.until(lambda b: b.execute_script("return location.hash") == "#/sign-in", "the sign-in")
    assert page.text("#notice") == "Your session has ended. Sign in again."
    assert page.api.requests == []


def test_a_429_on_the_client_list_says_when_to_retry_once(page: Page) -> None:
    page.api.answer("GET", "/clients", NO_CLIENTS)
    page.api.answer("POST", "/clients/link", RATE_LIMITED)
    page.open("/#/clients")

    page.until(lambda b: "No clients yet" in b.find_element("id", "screen").text, "the Client List")
    page.browser.find_element("id", "add-client").click()

    said = page.until(lambda b: b.find_element("css selector", "main .error").text, "the 429 said")
    assert said.startswith("Too many requests from your practice right now. Try again in 12 seconds (at ")
    assert said.count("ry again") == 1


def test_config_json_failing_once_does_not_stick_for_the_next_screen(page: Page) -> None:
    page.api.answer("GET", "/clients", NO_CLIENTS)
    page.console.config_fails = True
    page.open("/#/clients")
    page.until(lambda _: page.console.config_asked, "config.json asked for")

    # When config.json is back and the user moves to another screen
    page.console.config_fails = False
    page.browser.execute_script("location.hash = '#/'")

    page.until(lambda b: "No clients yet" in b.find_element("id", "screen").text, "the Client List")
    assert page.api.count("GET", "/clients") >= 1
