// Xero sends the browser back here after consent. The page hands the state and code (or Xero's error) to the API
// with the signed-in user's JWT: only the user who started the link can complete it (POST /xero/link-completions).
// Every outcome is said as people read it, with the way on: the Client List, or after a relink that client's
// Client Overview.
import { call, describe } from "./api.js";

const PENDING_KEY = "xero-sync.pending-link"; // a completion kept across a sign-in (a 401 does not use up the state)
// A completion kept for Try again, and across a reload: a 429 is given before the API reads the state, and an API
// that could not be reached never saw it, so neither uses it up.
const RETRY_KEY = "xero-sync.retry-link";
const NOTICE_KEY = "xero-sync.notice";
const outcome = document.getElementById("outcome");
const next = document.getElementById("next");
const retryRow = document.getElementById("retry-row");

// What to do next, by the API's code (docs/link-flow.md lists them all).
const START_AGAIN = "Start again from the Client List: Add client, or Link to Xero on the client's card.";
const NEXT_STEP = {
  linked: "Their first sync has started: the Client List shows its progress.",
  invalid_state: "Links expire after 10 minutes and work once. " + START_AGAIN,
  state_mismatch: "Only the person who started a link can finish it. Nothing was linked: ask them to finish it, or start again from your own Client List.",
  access_denied: "Nothing was linked. " + START_AGAIN,
  xero_error: START_AGAIN,
  missing_code: START_AGAIN,
  exchange_failed: "Nothing was linked. " + START_AGAIN,
  no_organisation: "Tick at least one organisation on Xero's page. " + START_AGAIN,
  wrong_organisation: "A relink must choose the client's own organisation. Nothing changed. " + START_AGAIN,
  client_being_deleted: "That organisation's client is being deleted. Link it again once the deletion is over.",
  connection_being_removed: "Nothing was linked. Wait a minute, then link it again from the Client List.",
  xero_unavailable: "Nothing was linked. Wait a few minutes, then start again from the Client List.",
};

const clientListLink = () => Object.assign(document.createElement("a"), { href: "/#/clients", textContent: "Open the Client List" });

function show(state, text, code) {
  outcome.dataset.state = state;
  if (code) outcome.dataset.code = code;
  else delete outcome.dataset.code;
  outcome.textContent = text;
  next.textContent = NEXT_STEP[code] ?? "";
  // A failure with no step of its own (a 500, an answer the page cannot read) may have linked something or not.
  if (state === "failed" && !(code in NEXT_STEP)) {
    next.replaceChildren(clientListLink(), " to see what is linked, and start again from there if it is not.");
  }
}

function completionFromAddress() {
  const query = new URLSearchParams(window.location.search);
  const completion = {};
  for (const name of ["state", "code", "error"]) {
    if (query.get(name)) completion[name] = query.get(name);
  }
  // The code is single use and must not stay in the address bar, the history or a bookmark.
  window.history.replaceState(null, "", window.location.pathname);
  const kept = sessionStorage.getItem(PENDING_KEY) ?? sessionStorage.getItem(RETRY_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  sessionStorage.removeItem(RETRY_KEY);
  if (completion.state || Object.keys(completion).length) return completion;
  return kept ? JSON.parse(kept) : completion;
}

async function complete(completion) {
  retryRow.hidden = true;
  if (!completion.state) {
    if (!Object.keys(completion).length) {
      // A reload after the link finished (or Back to this page): the address no longer has Xero's answer.
      show("done", "Nothing left to finish here.");
      return;
    }
    show("failed", "Xero sent no link to finish.", "missing_state");
    next.textContent = START_AGAIN;
    return;
  }
  show("working", "Finishing the link with Xero…");
  try {
    const linked = await call("POST", "/xero/link-completions", completion);
    outcome.dataset.clientIds = linked.clientIds.join(",");
    if (linked.outcome === "relinked") {
      // Back to the client, whose overview shows the sync the relink started.
      sessionStorage.setItem(NOTICE_KEY, `${linked.message} A sync has started to bring it up to date.`);
      show("linked", linked.message, linked.code);
      window.location.replace(`/#/clients/${linked.clientIds[0]}`);
      return;
    }
    show("linked", linked.message, linked.code);
  } catch (error) {
    if (error.status === 401) {
      // Not used up: finish it after signing in again (the sign-in screen comes back here).
      sessionStorage.setItem(PENDING_KEY, JSON.stringify(completion));
      show("failed", "Your session has ended. Sign in again to finish linking.", "unauthorized");
      next.replaceChildren(Object.assign(document.createElement("a"), { href: "/#/sign-in", textContent: "Sign in" }));
      return;
    }
    if (error.status === 429 || error.status === 0) {
      sessionStorage.setItem(RETRY_KEY, JSON.stringify(completion));
      retryRow.hidden = false;
      if (error.code === "no_answer") {
        // The API took the request but its answer was lost (a function that timed out, maybe after linking): the
        // state may be used up, and Try again would then say the link expired. The Client List tells.
        show("waiting", "The API did not answer: the organisation may be linked all the same.", error.code);
        next.replaceChildren(clientListLink(), " to see whether it is linked. If it is not, press Try again (which says the" +
          " link was already used if it had finished).");
        return;
      }
      show("waiting", describe(error), error.code);
      next.textContent = "The link is kept: press Try again to finish it.";
      return;
    }
    show("failed", describe(error), error.code);
  }
}

document.getElementById("retry").addEventListener("click", () => {
  const kept = sessionStorage.getItem(RETRY_KEY);
  sessionStorage.removeItem(RETRY_KEY);
  complete(kept ? JSON.parse(kept) : {});
});
complete(completionFromAddress());
