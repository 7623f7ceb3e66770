// Xero sends the browser back here after consent. The page hands the state and code (or Xero's error) to the API
// with the signed-in user's JWT: only the user who started the link can complete it (POST /xero/link-completions).
import { call } from "./api.js";

const outcome = document.getElementById("outcome");

function show(state, text) {
  outcome.dataset.state = state;
  outcome.textContent = text;
}

async function complete() {
  const query = new URLSearchParams(window.location.search);
  const completion = {};
  for (const name of ["state", "code", "error"]) {
    if (query.get(name)) completion[name] = query.get(name);
  }
  // The code is single use and must not stay in the address bar, the history or a bookmark.
  window.history.replaceState(null, "", window.location.pathname);
  if (!completion.state) {
    show("failed", "Xero sent no link to finish. Start linking again from the client list.");
    return;
  }
  try {
    const linked = await call("POST", "/xero/link-completions", completion);
    outcome.dataset.clientIds = linked.clientIds.join(",");
    outcome.dataset.code = linked.code;
    show("linked", linked.message);
  } catch (error) {
    outcome.dataset.code = error.code;
    show("failed", error.message);
  }
}

complete();
