// Small DOM helpers shared by the screens. Everything is built with createElement and textContent: no innerHTML with
// data (organisation names and Xero records are other people's text), no inline styles (a strict CSP forbids them).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// replaceChildren without the absent parts (a screen's optional lines are null when they do not apply).
export function fill(element, ...children) {
  element.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

const numberFormat = new Intl.NumberFormat();
export const count = (n) => numberFormat.format(n ?? 0);

export function exactTime(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

// "2 hours ago": how people read a last sync; the exact time is in the title and the datetime attribute. A time
// ahead of now is a browser clock behind the API's: what happened is said as "just now", not "in 20 seconds".
export function relativeTime(iso, now = Date.now()) {
  const seconds = Math.min(0, Math.round((new Date(iso).getTime() - now) / 1000));
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.trunc(seconds / size), unit);
  }
  return Math.abs(seconds) < 10 ? "just now" : format.format(seconds, "second");
}

export function when(iso) {
  if (!iso) return h("span", {}, "never");
  return h("time", { datetime: iso, title: exactTime(iso), dataset: { relative: "" } }, relativeTime(iso));
}

// How often a screen left open says its relative times again ("just now" becomes "15 seconds ago", then minutes).
export const RELATIVE_TIMES_MS = 10000;
export function refreshTimes(root, now = Date.now()) {
  for (const time of root.querySelectorAll("time[data-relative]")) {
    const text = relativeTime(time.dateTime, now);
    if (time.textContent !== text) time.textContent = text;
  }
}

// The padlock always carries words: the link state is never shown by colour or a symbol alone. The symbol is an
// SVG drawn here (no icon font, which a strict CSP and some machines lack), hidden from screen readers.
const PADLOCKS = {
  linked: [true, "Linked to Xero"],
  unlinked: [false, "Not linked to Xero"],
  needs_relink: [false, "Needs relinking to Xero"],
};

function padlockIcon(closed) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", "padlock-icon");
  svg.setAttribute("aria-hidden", "true");
  const shackle = document.createElementNS(svg.namespaceURI, "path");
  shackle.setAttribute("d", closed ? "M4.5 7V5a3.5 3.5 0 0 1 7 0v2" : "M4.5 7V5a3.5 3.5 0 0 1 7 0v-1");
  shackle.setAttribute("transform", closed ? "" : "translate(4 -1)");
  const body = document.createElementNS(svg.namespaceURI, "rect");
  for (const [name, value] of Object.entries({ x: 2.5, y: 7, width: 11, height: 8, rx: 1.5 })) body.setAttribute(name, value);
  svg.append(shackle, body);
  return svg;
}

export function padlock(linkState) {
  const [closed, words] = PADLOCKS[linkState] ?? [false, linkState];
  return h("span", { class: "padlock", dataset: { linkState } }, padlockIcon(closed), ` ${words}`);
}

const WAITS = {
  rate_limit: "Xero's per-minute limit",
  daily_limit: "Xero's daily limit",
  organisation_offline: "the organisation to come back online at Xero",
  xero_retry: "Xero to answer again",
};

export const ACTIVE = new Set(["queued", "running", "deferred"]);

// A wait's end: the time alone today, with the date when it is another day (Xero's daily limit can be tomorrow).
function untilWords(iso) {
  const until = new Date(iso);
  return until.toDateString() === new Date().toDateString() ? until.toLocaleTimeString() : exactTime(iso);
}

// How soon a screen looks at a run again: every `fastMs` while it moves, but a run that waits (deferred by Xero's
// daily limit, for hours) only when its wait ends, and at least once a minute.
export const SLOW_POLL_MS = 60000;
export function pollDelay(run, fastMs, now = Date.now()) {
  const wait = run?.waitingOn ?? run?.progress?.waitingOn;
  const until = wait?.until ? new Date(wait.until).getTime() - now : NaN;
  if (until > fastMs) return Math.min(until, SLOW_POLL_MS);
  return run?.status === "deferred" ? SLOW_POLL_MS : fastMs;
}

// How soon a screen reads again after failed reads in a row: its pace doubled for each, at most SLOW_POLL_MS, so a
// blip is soon over and an API that is down is not asked every second.
export function retryDelay(fastMs, failures) {
  return Math.min(fastMs * 2 ** failures, SLOW_POLL_MS);
}

// A run in progress as people read it: a labelled progress bar and a sentence (resources, records, what it waits on).
export function progress(run) {
  if (!run || !ACTIVE.has(run.status)) return null;
  const detail = run.progress;
  const wait = run.waitingOn ?? detail?.waitingOn;
  const words = [];
  if (run.status === "queued") words.push("Sync queued.");
  if (run.status === "deferred") words.push("Sync deferred.");
  if (detail) {
    words.push(`${detail.resourcesDone} of ${detail.resourcesTotal} resources done, ${count(detail.recordsSoFar)} records so far.`);
  } else if (run.status === "running") {
    words.push("Sync starting…");
  }
  if (wait) words.push(`Waiting on ${WAITS[wait.reason] ?? wait.reason} until ${untilWords(wait.until)}.`);
  const bar = h("progress", { max: detail?.resourcesTotal || 1, "aria-label": "Sync progress" });
  if (detail) bar.value = detail.resourcesDone;
  return h("div", { class: "progress", dataset: { runStatus: run.status } }, bar, h("p", {}, words.join(" ")));
}

// A confirmation as a native modal dialog: focus moves into it, Escape cancels, and focus returns after.
export function confirmDialog({ title, body, confirm, danger = false }) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, body),
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { value: "cancel", class: "quiet", autofocus: true }, "Cancel"),
        h("button", { value: "confirm", class: danger ? "danger" : "primary" }, confirm),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "confirm");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// An options menu as a disclosure: a labelled button that shows a list of action buttons. Escape closes it and
// returns focus to its button; Tab moves through the actions like any other buttons.
// `open` builds it already open (a card rebuilt while its menu was open keeps it open).
export function optionsMenu(label, actions, open = false) {
  const list = h("ul", { class: "menu", hidden: !open });
  const toggle = h("button", { type: "button", class: "options", "aria-expanded": String(open), "aria-label": label }, "Options ▾");
  const close = () => {
    list.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
  };
  toggle.addEventListener("click", () => {
    const open = list.hidden;
    list.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) list.querySelector("button")?.focus();
  });
  for (const { text, run, name } of actions) {
    const button = h("button", { type: "button", dataset: { action: name } }, text);
    button.addEventListener("click", () => {
      close();
      toggle.focus();
      run();
    });
    list.append(h("li", {}, button));
  }
  const wrapper = h("div", { class: "menu-wrapper" }, toggle, list);
  wrapper.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !list.hidden) {
      close();
      toggle.focus();
    }
  });
  wrapper.addEventListener("focusout", (event) => {
    if (!wrapper.contains(event.relatedTarget)) close();
  });
  return wrapper;
}

// A press that a second press cannot repeat while its work is under way (a double click sends one request): the
// button pressed is disabled until the work settles. With `disable: false` it is not (a confirmation's dialog returns
// focus to the button that opened it, which a disabled button cannot take): a second press does nothing.
// `underWay` (a Map) and `key` keep the work under way in the screen rather than in this handler, so the button of a
// card rebuilt meanwhile (a reload during a sync) does nothing either.
export function onePress(work, { disable = true, underWay = new Map(), key = "" } = {}) {
  return (event) => {
    if (underWay.has(key)) return underWay.get(key);
    const button = disable && event?.currentTarget instanceof HTMLButtonElement ? event.currentTarget : null;
    if (button) button.disabled = true;
    const running = Promise.resolve()
      .then(work)
      .finally(() => {
        underWay.delete(key);
        if (button) button.disabled = false;
      });
    underWay.set(key, running);
    return running;
  };
}
