// Sign-in. Locally the stack mints the JWT for the practice and user picked (POST /_local/tokens, loopback only).
// Deployed, the practice's identity provider issues it (config.json's signIn; docs/console.md describes the
// contract); this reference console then takes a token handed to it rather than running an OpenID Connect flow.
import { config, signIn } from "../api.js";
import { navigate, notice } from "../shell.js";
import { h } from "../ui.js";

export async function signInScreen(screen) {
  const { signIn: how = {} } = await config();
  const error = h("p", { class: "error", role: "alert" });
  screen.append(h("h1", { tabindex: "-1" }, "Sign in"));
  if (how.mode === "local") {
    screen.append(localForm(how.tokensUrl, error), error);
  } else {
    screen.append(
      h("p", {}, `Sign in with your practice's identity provider${how.issuer ? ` (${how.issuer})` : ""}, then paste the access token it gave you.`),
      tokenForm(error),
      error,
    );
  }
}

function field(id, label, value, hint) {
  return h(
    "p",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, value, required: true, autocomplete: "off", "aria-describedby": `${id}-hint` }),
    h("span", { id: `${id}-hint`, class: "hint" }, hint),
  );
}

function localForm(tokensUrl, error) {
  const form = h(
    "form",
    { class: "sign-in" },
    h("p", {}, "Local stack: pick a practice and a user. Each practice sees only its own clients."),
    field("practice", "Practice", "demo-practice", "e.g. demo-practice"),
    field("user", "User", "local-user", "e.g. local-user"),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const practice = form.elements.practice.value.trim();
    const user = form.elements.user.value.trim();
    try {
      const response = await fetch(tokensUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ practice, user }),
      });
      const payload = await response.json();
      if (!response.ok) throw new Error(payload.error?.message ?? "Sign-in failed.");
      signedIn(payload.token, `Signed in as ${user} of ${practice}.`);
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  return form;
}

function tokenForm(error) {
  const form = h(
    "form",
    { class: "sign-in" },
    h("p", { class: "field" }, h("label", { for: "token" }, "Access token"), h("textarea", { id: "token", required: true, rows: 4 })),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const jwt = form.elements.token.value.trim();
    if (jwt.split(".").length !== 3) {
      error.textContent = "That is not a token: it should be three parts separated by dots.";
      return;
    }
    signedIn(jwt, "Signed in.");
  });
  return form;
}

function signedIn(jwt, text) {
  signIn(jwt);
  // A link whose completion met an ended session is finished now, by the callback page.
  if (sessionStorage.getItem("xero-sync.pending-link")) {
    window.location.assign("/xero/callback");
    return;
  }
  notice(text);
  navigate("#/clients");
}
