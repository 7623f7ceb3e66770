// The Client List: a card per client, a page at a time as the API pages (GET /clients?limit&cursor). A card shows
// the padlock, the last successful sync and a running sync's progress; its options menu has Sync with Xero,
// Unlink from Xero / Link to Xero and Delete client. While a card's sync runs, the list refreshes itself.
import { deleteClient, startLink, syncNow, unlink } from "../actions.js";
import { call } from "../api.js";
import { endsSession, screenAlert } from "../shell.js";
import { ACTIVE, h, onePress, optionsMenu, padlock, pollDelay, progress, retryDelay, when } from "../ui.js";

const PAGE_SIZE = 12;
const REFRESH_MS = 1500;

export async function clientList(screen, { signal }) {
  const cursors = [null]; // the cursor of each page seen, so Previous page can go back
  const cards = h("ul", { class: "cards", "aria-label": "Clients" });
  const pager = h("nav", { class: "pager", "aria-label": "Client pages" });
  const problem = h("p", { class: "error", role: "alert" });
  const alerts = screenAlert(problem, () => load());
  // A card's action under way, by client and action: a press on the card a reload rebuilt meanwhile sends nothing.
  const underWay = new Map();
  const press = (clientId, name, work, done) => onePress(alerts.act(work, done), { underWay, key: `${clientId} ${name}` });
  const addClient = h("button", { type: "button", class: "primary", id: "add-client" }, "Add client");
  addClient.addEventListener("click", onePress(() => startLink().catch(alerts.actionFailed)));
  const heading = h("h1", { tabindex: "-1" }, "Client List");
  screen.append(h("div", { class: "title" }, heading, addClient), problem, cards, pager);

  // A card is rebuilt only when what it shows changed, and keeps keyboard focus when it is: the list refreshes
  // itself while a sync runs, and must not pull focus from under a keyboard user.
  const shown = new Map();
  function reuse(client, detail) {
    const key = JSON.stringify([client, detail]);
    const previous = shown.get(client.clientId);
    if (previous?.key === key) return previous.element;
    // A menu open in the card replaced (a keyboard user on its Unlink from Xero) is open in the new one.
    const menuOpen = previous ? !previous.element.querySelector(".menu").hidden : false;
    const element = card(client, detail, press, menuOpen);
    const focused = previous?.element.contains(document.activeElement) ? document.activeElement : null;
    if (focused) {
      queueMicrotask(() => element.querySelector(focusKey(focused))?.focus());
    }
    shown.set(client.clientId, { key, element });
    return element;
  }

  let timer;
  let failures = 0; // loads failed in a row
  async function load() {
    clearTimeout(timer);
    if (signal.aborted) return;
    try {
      const cursor = cursors.at(-1);
      const query = new URLSearchParams({ limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
      const page = await call("GET", `/clients?${query}`);
      if (signal.aborted) return;
      const details = await Promise.all(page.items.map(detailFor));
      if (signal.aborted) return;
      cards.replaceChildren(...page.items.map((client, i) => reuse(client, details[i])));
      // A later page can be empty (its clients being deleted, or the last one just deleted): the practice has clients.
      if (!page.items.length) {
        cards.replaceChildren(h("li", { class: "empty" },
          cursors.length > 1 ? "No more clients. Previous page goes back." : "No clients yet. Add client links a Xero organisation."));
      }
      pager.replaceChildren(...pagerButtons(page.nextCursor));
      alerts.readSucceeded();
      failures = 0;
      // A running sync's progress and the last sync time after it are kept fresh while anything is under way.
      // A run deferred by Xero's daily limit is looked at when its wait ends, not every 1.5 s for hours.
      const busy = page.items.map((c, i) => details[i]?.currentRun ?? c.currentRun).filter((run) => run && ACTIVE.has(run.status));
      if (busy.length) timer = setTimeout(load, Math.min(...busy.map((run) => pollDelay(run, REFRESH_MS))));
    } catch (error) {
      alerts.readFailed(error);
      // A failed load of a list shown (a refresh during a sync, a network blip, the gateway's 503) is tried again,
      // less often each time, so the cards come back with the API. A 401 has opened the sign-in.
      if (shown.size && !endsSession(error) && !signal.aborted) timer = setTimeout(load, retryDelay(REFRESH_MS, ++failures));
    }
  }

  // A pager's page replaces the button pressed: focus goes to the heading, the new page just after it.
  const turn = (step) => () => {
    step();
    load().then(() => heading.focus());
  };
  function pagerButtons(nextCursor) {
    const buttons = [];
    if (cursors.length > 1) {
      buttons.push(h("button", { type: "button", onclick: turn(() => cursors.pop()) }, "Previous page"));
    }
    if (nextCursor) {
      buttons.push(h("button", { type: "button", onclick: turn(() => cursors.push(nextCursor)) }, "Next page"));
    }
    return buttons;
  }

  signal.addEventListener("abort", () => clearTimeout(timer));
  await load();
}

function focusKey(element) {
  if (element.dataset.action) return `[data-action="${element.dataset.action}"]`;
  return element.classList.contains("options") ? "button.options" : element.tagName.toLowerCase();
}

// The summary lacks a running sync's progress and a relink's reason: those cards read the client's overview.
function detailFor(client) {
  const busy = client.currentRun && ACTIVE.has(client.currentRun.status);
  return busy || client.linkState === "needs_relink" ? call("GET", `/clients/${client.clientId}`).catch(() => null) : null;
}

function card(client, detail, press, menuOpen) {
  const run = detail?.currentRun ?? client.currentRun;
  const linked = client.linkState === "linked";
  const link = press(client.clientId, "link", () => startLink(client.clientId));
  const linkButton = linked ? null : h("button", { type: "button", class: "primary", onclick: link }, "Link to Xero");
  // Sync with Xero only for a linked client (the API refuses the others); a client that needs relinking can be
  // linked again or unlinked, as the Client Overview offers.
  const menu = optionsMenu(`Options for ${client.name}`, [
    linked ? { name: "sync", text: "Sync with Xero", run: press(client.clientId, "sync", () => syncNow(client.clientId), `Sync of ${client.name} started.`) } : null,
    linked ? null : { name: "link", text: "Link to Xero", run: link },
    client.linkState === "unlinked"
      ? null
      : { name: "unlink", text: "Unlink from Xero", run: press(client.clientId, "unlink", () => unlink(client), `${client.name} is unlinked from Xero. Its data stays, frozen.`) },
    { name: "delete", text: "Delete client", run: press(client.clientId, "delete", () => deleteClient(client), `${client.name} is being deleted.`) },
  ].filter(Boolean), menuOpen);
  return h(
    "li",
    { class: "card", dataset: { clientId: client.clientId, linkState: client.linkState, runStatus: run?.status ?? "" } },
    h("h2", {}, h("a", { href: `#/clients/${client.clientId}` }, client.name)),
    h("p", {}, padlock(client.linkState)),
    client.linkState === "needs_relink"
      ? h("p", { class: "warning" }, h("span", { "aria-hidden": "true" }, "⚠ "), detail?.linkStateReason ?? "Xero no longer lets us read this organisation. Link to Xero again.")
      : null,
    h("p", { class: "last-sync" }, "Last successful sync: ", when(client.lastSuccessfulSyncAt)),
    progress(run),
    h("div", { class: "card-actions" }, linkButton, menu),
  );
}
