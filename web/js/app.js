// The console's shell: a hash router (static files only, so no server rewrites are needed), the header's signed-in
// user, a notice region that survives a screen change, and the one place a 401 sends the user to sign in.
import { signOut, token, whoAmI } from "./api.js";
import { clientList } from "./screens/client-list.js";
import { clientOverview } from "./screens/client-overview.js";
import { signInScreen } from "./screens/sign-in.js";
import { xeroOrganisation } from "./screens/xero-organisation.js";
import { clearStaleNotice, failed, navigate, notice } from "./shell.js";
import { RELATIVE_TIMES_MS, refreshTimes } from "./ui.js";

const NOTICE_KEY = "xero-sync.notice"; // a notice left by another page (the Xero callback) for the next screen
const screen = document.getElementById("screen");
let leaveScreen = () => {};

const ROUTES = [
  [/^#\/sign-in$/, () => signInScreen],
  [/^#\/clients\/([\w-]+)\/xero(?:\/(\w+))?$/, () => xeroOrganisation],
  [/^#\/clients\/([\w-]+)$/, () => clientOverview],
  [/^(?:#\/?(?:clients)?)?$/, () => clientList],
];

async function showWho() {
  const who = await whoAmI();
  document.getElementById("who").hidden = !who;
  document.getElementById("sign-out").hidden = !who;
  if (who) document.getElementById("who").textContent = `${who.user} · ${who.practice}`;
}

async function route() {
  leaveScreen();
  leaveScreen = () => {};
  clearStaleNotice();
  const hash = window.location.hash;
  if (!token() && hash !== "#/sign-in") {
    navigate("#/sign-in");
    return;
  }
  // A screen that names a client sets its own title; every other screen has the console's (no client left in it).
  document.title = "Practice console";
  for (const [pattern, load] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    const render = load();
    screen.replaceChildren();
    const stop = new AbortController();
    // The relative times ("5 minutes ago") of a screen left open are said again, until the screen goes.
    const ticking = setInterval(() => refreshTimes(screen), RELATIVE_TIMES_MS);
    leaveScreen = () => {
      stop.abort();
      clearInterval(ticking);
    };
    try {
      // Inside the try: a config.json that cannot be read is said, not left on "Loading…".
      await showWho();
      await render(screen, { params: match.slice(1), signal: stop.signal });
    } catch (error) {
      failed(error);
    }
    // Focus the new screen's heading so keyboard and screen-reader users start at the top of what changed, unless
    // the user has moved into the screen while the rest of it loaded.
    if (!screen.contains(document.activeElement)) screen.querySelector("h1")?.focus();
    return;
  }
  screen.replaceChildren("There is no such page.");
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  notice("Signed out.");
  navigate("#/sign-in");
});
window.addEventListener("hashchange", route);
window.addEventListener("console:route", route);
const left = sessionStorage.getItem(NOTICE_KEY);
if (left) {
  sessionStorage.removeItem(NOTICE_KEY);
  notice(left);
}
route();
