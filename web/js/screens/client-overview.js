// The Client Overview (GET /clients/{id}): the link state in full, Sync Now with a live progress bar (the overview
// polled while a run is queued or running), Unlink from Xero / Link to Xero, the sync history
// (GET /clients/{id}/syncs) and the way to the Xero Organisation view.
import { deleteClient, startLink, syncNow, unlink } from "../actions.js";
import { call } from "../api.js";
import { failed, navigate, notice } from "../shell.js";
import { ACTIVE, count, exactTime, fill, h, padlock, progress, when } from "../ui.js";
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
  async function refresh() {
    clearTimeout(timer);
    if (signal.aborted) return;
    try {
      const client = await call("GET", `/clients/${clientId}`);
      if (signal.aborted) return;
      const active = Boolean(client.currentRun && ACTIVE.has(client.currentRun.status));
      render(client, active);
      // The history is read again when a run ends, not on every poll.
      if (!active || !wasActive) await syncHistory(history, clientId, signal);
      wasActive = active;
      if (active) timer = setTimeout(refresh, POLL_MS);
    } catch (error) {
      failed(error, problem);
    }
  }

  function render(client, active) {
    heading.textContent = `${client.name} — Client Overview`;
    document.title = `${client.name} · Practice console`;
    screen.dataset.linkState = client.linkState;
    fill(state,
      h("h2", { id: "state-heading", class: "visually-hidden" }, "Link and sync state"),
      h("p", {}, padlock(client.linkState)),
      client.linkStateReason ? h("p", { class: "warning" }, h("span", { "aria-hidden": "true" }, "⚠ "), client.linkStateReason) : null,
      h("p", { class: "last-sync" }, "Last successful sync: ", when(client.lastSuccessfulSyncAt),
        client.lastSuccessfulSyncAt ? ` (${exactTime(client.lastSuccessfulSyncAt)})` : null),
      client.lastError ? h("p", { class: "warning" }, `Last error: ${client.lastError}`) : null,
      recordCounts(client.recordCounts),
    );
    fill(live,progress(client.currentRun) ?? h("p", { class: "idle" }, active ? "" : "No sync is running."));
    live.dataset.runStatus = client.currentRun?.status ?? "";

    const act = (work, done) => async () => {
      try {
        if ((await work()) !== false && done) notice(done);
        await refresh();
      } catch (error) {
        failed(error, problem);
      }
    };
    const linked = client.linkState === "linked";
    const syncButton = h("button", { type: "button", class: "primary", id: "sync-now", disabled: active || !linked },
      active ? "Sync in progress…" : "Sync Now");
    syncButton.addEventListener("click", act(() => syncNow(clientId), "Sync started."));
    fill(actions,
      syncButton,
      linked
        ? h("button", { type: "button", id: "unlink", onclick: act(() => unlink(client), `${client.name} is unlinked from Xero. Its data stays, frozen.`) }, "Unlink from Xero")
        : h("button", { type: "button", id: "link", class: "primary", onclick: act(() => startLink(clientId)) }, "Link to Xero"),
      h("a", { href: `#/clients/${clientId}/xero`, class: "button", id: "xero-organisation" }, "Xero Organisation"),
      h("button", {
        type: "button",
        class: "danger",
        id: "delete",
        onclick: async () => {
          try {
            if (await deleteClient(client)) {
              notice(`${client.name} is being deleted.`);
              navigate("#/clients");
            }
          } catch (error) {
            failed(error, problem);
          }
        },
      }, "Delete client"),
    );
  }

  signal.addEventListener("abort", () => clearTimeout(timer));
  await refresh();
}

function recordCounts(counts = {}) {
  const rows = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  if (!rows.length) return h("p", {}, "No Xero records imported yet.");
  const total = rows.reduce((sum, [, n]) => sum + n, 0);
  return h(
    "details",
    { class: "counts" },
    h("summary", {}, `${count(total)} Xero records imported, in ${rows.length} resources`),
    h("table", {},
      h("caption", {}, "Records stored per Xero resource"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Resource"), h("th", { scope: "col", class: "number" }, "Records"))),
      h("tbody", {}, rows.map(([name, n]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "number" }, count(n))))),
    ),
  );
}
