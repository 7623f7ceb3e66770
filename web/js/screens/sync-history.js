// The sync history of a client (GET /clients/{id}/syncs), newest first, a page at a time: trigger, status, records
// inserted / updated / deleted, Xero calls, 429s, waits, and errors as codes and messages.
import { call } from "../api.js";
import { failed } from "../shell.js";
import { count, exactTime, fill, h } from "../ui.js";

const PAGE_SIZE = 10;
const TRIGGERS = { nightly: "Nightly", manual: "Sync Now", link: "Link", relink: "Relink", console: "Console" };

export async function syncHistory(section, clientId, signal, cursor = null) {
  const query = new URLSearchParams({ limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
  const page = await call("GET", `/clients/${clientId}/syncs?${query}`);
  if (signal.aborted) return;
  const body = h("tbody", {}, page.items.map(row));
  // A pager's page replaces the button pressed: focus goes to the section's heading, and a failure is said.
  const turn = (to) => () =>
    syncHistory(section, clientId, signal, to)
      .then(() => section.querySelector("#history-heading")?.focus())
      .catch((error) => failed(error));
  const more = page.nextCursor ? h("button", { type: "button", onclick: turn(page.nextCursor) }, "Older syncs") : null;
  fill(section,
    h("h2", { id: "history-heading", tabindex: "-1" }, "Sync history"),
    page.items.length
      ? h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Sync history table" },
          h("table", { id: "sync-history" },
            h("thead", {}, h("tr", {}, ["Queued", "Trigger", "Status", "Inserted", "Updated", "Deleted", "Calls", "429s", "Waited", "Error"]
              .map((name) => h("th", { scope: "col" }, name)))),
            body))
      : h("p", {}, "No syncs yet."),
    cursor ? h("button", { type: "button", onclick: turn(null) }, "Newest syncs") : null,
    more,
  );
}

function row(run) {
  const totals = { inserted: 0, updated: 0, deleted: 0 };
  for (const counts of Object.values(run.counts ?? {})) {
    for (const name of Object.keys(totals)) totals[name] += counts[name] ?? 0;
  }
  const error = run.errorCode ? h("span", {}, h("code", {}, run.errorCode), run.errorMessage ? ` ${run.errorMessage}` : "") : "—";
  return h(
    "tr",
    { dataset: { runId: run.runId, status: run.status, trigger: run.trigger } },
    h("td", {}, h("time", { datetime: run.queuedAt }, exactTime(run.queuedAt))),
    h("td", {}, TRIGGERS[run.trigger] ?? run.trigger, run.mode === "full" ? " (full)" : ""),
    h("td", {}, run.status),
    h("td", { class: "number" }, count(totals.inserted)),
    h("td", { class: "number" }, count(totals.updated)),
    h("td", { class: "number" }, count(totals.deleted)),
    h("td", { class: "number" }, count(run.apiCalls)),
    h("td", { class: "number" }, count(run.rateLimited)),
    h("td", { class: "number" }, `${Math.round(run.waitedSeconds ?? 0)} s`),
    h("td", {}, error),
  );
}
