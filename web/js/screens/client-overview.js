// The Client Overview (GET /clients/{id}): the link state in full, Sync Now with a live progress bar (the overview
// polled while a run is queued or running), Unlink from Xero / Link to Xero, the sync history
// (GET /clients/{id}/syncs) and the way to the Xero Organisation view.
import { deleteClient, startLink, syncNow, unlink } from "../actions.js";
import { call } from "../api.js";
import { endsSession, navigate, notice, screenAlert } from "../shell.js";
import { ACTIVE, count, exactTime, fill, h, onePress, padlock, pollDelay, progress, retryDelay, when } from "../ui.js";
import { syncHistory } from "./sync-history.js";

const POLL_MS = 1000;

export async function clientOverview(screen, { params: [clientId], signal }) {
  const heading = h("h1", { tabindex: "-1" }, "Client Overview");
  const problem = h("p", { class: "error", role: "alert" });
  const state = h("section", { "aria-labelledby": "state-heading" });
  // The progress lives in its own polite live region so a screen reader hears it change without moving focus.
  const live = h("div", { class: "live", "aria-live": "polite" });
  const actions = h("div", { class: "overview-actions" });
  const history = h("section", { "aria-labelledby": "history-heading" });
  screen.append(
    h("p", {}, h("a", { href: "#/clients" }, "← Client List")),
    heading,
    problem,
    state,
    live,
    actions,
    history,
  );

  let timer;
  let wasActive = false;
  let failures = 0; // reads failed in a row
  const alerts = screenAlert(problem, () => refresh());
  let current; // the client as last read: the actions act on it
  let syncing = false; // a Sync Now request under way: a second press sends nothing
  async function refresh() {
    clearTimeout(timer);
    if (signal.aborted) return;
    try {
      const client = await call("GET", `/clients/${clientId}`);
      if (signal.aborted) return;
      const active = runActive(client);
      render(client, active);
      // The history is read again when a run ends, not on every poll.
      if (!active || !wasActive) await syncHistory(history, clientId, signal);
      wasActive = active;
      failures = 0;
      alerts.readSucceeded();
      // A run deferred by Xero's daily limit is looked at again when its wait ends, not every second for hours.
      if (active) timer = setTimeout(refresh, pollDelay(client.currentRun, POLL_MS));
    } catch (error) {
      alerts.readFailed(error);
      // A failed read of a client shown (a poll during a sync, a network blip, the gateway's 503) is tried again, less
      // often each time, so the progress and Sync Now come back with the API. A 401 has opened the sign-in.
      if (current && !endsSession(error) && !signal.aborted) timer = setTimeout(refresh, retryDelay(POLL_MS, ++failures));
    }
  }

  const { act } = alerts;
  // The actions are built once and updated in place on each poll, so a keyboard user's focus stays where it is.
  // Sync Now is never `disabled` (a focused button that is drops the focus to the page): aria-disabled says it cannot
  // be pressed, from its press through the run it started, and a press then does nothing.
  const syncButton = h("button", { type: "button", class: "primary", id: "sync-now" });
  const canSync = () => !syncing && Boolean(current) && current.linkState === "linked" && !runActive(current);
  function showSync() {
    syncButton.setAttribute("aria-disabled", String(!canSync()));
    const text = current && runActive(current) ? "Sync in progress…" : syncing ? "Starting sync…" : "Sync Now";
    if (syncButton.textContent !== text) syncButton.textContent = text;
  }
  showSync();
  syncButton.addEventListener("click", async () => {
    if (!canSync()) return;
    syncing = true;
    showSync();
    await act(() => syncNow(clientId), "Sync started.")();
    syncing = false;
    showSync();
  });
  const unlinkButton = h("button", { type: "button", id: "unlink",
    onclick: onePress(act(() => unlink(current), () => `${current.name} is unlinked from Xero. Its data stays, frozen.`), { disable: false }) },
    "Unlink from Xero");
  const linkButton = h("button", { type: "button", id: "link", class: "primary", onclick: onePress(act(() => startLink(clientId))) }, "Link to Xero");
  const organisationLink = h("a", { href: `#/clients/${clientId}/xero`, class: "button", id: "xero-organisation" }, "Xero Organisation");
  const deleteButton = h("button", {
    type: "button",
    class: "danger",
    id: "delete",
    onclick: onePress(async () => {
      try {
        if (await deleteClient(current)) {
          notice(`${current.name} is being deleted.`);
          navigate("#/clients");
        }
      } catch (error) {
        alerts.actionFailed(error);
      }
    }, { disable: false }),
  }, "Delete client");
  const counts = h("details", { class: "counts" });
  let shownState;

  function render(client, active) {
    current = client;
    heading.textContent = `${client.name} — Client Overview`;
    document.title = `${client.name} · Practice console`;
    screen.dataset.linkState = client.linkState;
    // (Whether any records are counted yet is part of it: the counts' <details> replaces "No Xero records imported
    // yet." during a first import.)
    const hasCounts = Object.keys(client.recordCounts ?? {}).length > 0;
    const stateKey = JSON.stringify([client.linkState, client.linkStateReason, client.lastSuccessfulSyncAt, client.lastError, hasCounts]);
    if (stateKey !== shownState) {
      shownState = stateKey;
      fill(state,
        h("h2", { id: "state-heading", class: "visually-hidden" }, "Link and sync state"),
        h("p", {}, padlock(client.linkState)),
        client.linkStateReason ? h("p", { class: "warning" }, h("span", { "aria-hidden": "true" }, "⚠ "), client.linkStateReason) : null,
        h("p", { class: "last-sync" }, "Last successful sync: ", when(client.lastSuccessfulSyncAt),
          client.lastSuccessfulSyncAt ? ` (${exactTime(client.lastSuccessfulSyncAt)})` : null),
        client.lastError ? h("p", { class: "warning" }, `Last error: ${client.lastError}`) : null,
        recordCounts(counts, client.recordCounts),
      );
    } else {
      recordCounts(counts, client.recordCounts);
    }
    // The live region is written only when what it says changes: a screen reader hears a change, not every poll.
    const said = progress(client.currentRun) ?? h("p", { class: "idle" }, active ? "" : "No sync is running.");
    if (said.textContent !== live.textContent || !live.firstChild) fill(live, said);
    live.dataset.runStatus = client.currentRun?.status ?? "";

    const linked = client.linkState === "linked";
    showSync();
    // A client that needs relinking can be linked again or unlinked (the API unlinks any client not yet unlinked).
    const buttons = [syncButton, linked ? null : linkButton, client.linkState === "unlinked" ? null : unlinkButton, organisationLink, deleteButton]
      .filter(Boolean);
    // Only a change of link state changes which buttons there are; the ones kept are not moved (moving drops focus).
    if (buttons.length !== actions.children.length || buttons.some((button, i) => actions.children[i] !== button)) {
      const hadFocus = actions.contains(document.activeElement);
      fill(actions, buttons);
      // A button removed with the focus on it (Unlink from Xero, its client now unlinked) hands it to Link to Xero in
      // its place, or to the heading: a keyboard user is not sent back to the top of the page.
      if (hadFocus && !actions.contains(document.activeElement)) (linked ? heading : linkButton).focus();
    }
  }

  signal.addEventListener("abort", () => clearTimeout(timer));
  await refresh();
}

function runActive(client) {
  return Boolean(client.currentRun && ACTIVE.has(client.currentRun.status));
}

// The record counts, updated in place: the <details> a user opened stays open while a sync adds records.
function recordCounts(details, counts = {}) {
  const rows = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  if (!rows.length) return h("p", {}, "No Xero records imported yet.");
  const total = rows.reduce((sum, [, n]) => sum + n, 0);
  const summary = `${count(total)} Xero records imported, in ${rows.length} resources`;
  const key = JSON.stringify(rows);
  if (details.dataset.key === key) return details;
  details.dataset.key = key;
  const shown = details.querySelector("summary");
  if (shown) {
    if (shown.textContent !== summary) shown.textContent = summary;
    fill(details.querySelector("tbody"), tableRows(rows));
  } else {
    fill(details,
      h("summary", {}, summary),
      h("table", {},
        h("caption", {}, "Records stored per Xero resource"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Resource"), h("th", { scope: "col", class: "number" }, "Records"))),
        h("tbody", {}, tableRows(rows)),
      ),
    );
  }
  return details;
}

function tableRows(rows) {
  return rows.map(([name, n]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "number" }, count(n))));
}
