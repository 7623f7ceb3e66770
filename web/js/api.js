// The API as the console calls it: its base URL from config.json, the signed-in user's JWT, and the API's error
// shape ({"error": {"code", "message"}}) turned into an ApiError the screens show as people read it.

const TOKEN_KEY = "xero-sync.token";

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let configPromise;
export function config() {
  configPromise ??= fetch("/config.json", { cache: "no-store" })
    .then((response) => {
      if (!response.ok) throw new ApiError(response.status, "no_config", "The console is not configured.");
      return response.json();
    })
    .catch((error) => {
      configPromise = undefined; // not kept: the next screen asks again (a deploy in progress, a moment offline)
      throw error;
    });
  return configPromise;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(jwt) {
  sessionStorage.setItem(TOKEN_KEY, jwt);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// The JWT's claims, for display and its expiry only: the API verifies the signature, never the console.
function claims(jwt) {
  try {
    const json = new TextDecoder().decode(
      Uint8Array.from(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export async function whoAmI() {
  const payload = token() && claims(token());
  if (!payload) return null;
  const { signIn: signInConfig = {} } = await config();
  return { user: payload.sub, practice: payload[signInConfig.practiceClaim ?? "practice_id"] };
}

// A token this close to its exp counts as expired: the gateway's clock, not the browser's, decides.
const EXPIRY_MARGIN_MS = 60_000;

function expired(jwt) {
  const exp = claims(jwt)?.exp;
  return typeof exp !== "number" || exp * 1000 - EXPIRY_MARGIN_MS <= Date.now();
}

// A 429 in the console's own words, by code (the API's message already says when, in its own way).
const TOO_MANY = {
  rate_limited: "Too many requests from your practice right now.",
  full_sync_limited: "A full sync of this client was asked for recently.",
};

// An error as a person reads it: the API's message, and for a 429 when to try again (Retry-After is exposed by CORS).
export function describe(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Try again.";
  if (error.status === 429) {
    const first = TOO_MANY[error.code] ?? "Too many requests right now.";
    const seconds = Number(error.retryAfter);
    if (!(seconds > 0)) return `${first} Try again in a little while.`;
    const at = new Date(Date.now() + seconds * 1000).toLocaleTimeString();
    return `${first} Try again in ${seconds} second${seconds === 1 ? "" : "s"} (at ${at}).`;
  }
  return error.message;
}

// Whether the API answers at all: a request without the token, whose answer the browser may not read (no-cors).
function reachable(apiUrl) {
  return fetch(`${apiUrl}/clients`, { mode: "no-cors", cache: "no-store" }).then(
    () => true,
    () => false,
  );
}

// Whether the gateway still lets the token through: a read whose answer the browser can read if it does.
function tokenAccepted(apiUrl, headers) {
  return fetch(`${apiUrl}/clients?limit=1`, { headers, cache: "no-store" }).then(
    () => true,
    () => false,
  );
}

// A request whose answer the browser could not read. The gateway's own answers carry no CORS headers: its 401 to a
// token it refuses before its exp (revoked, another audience, a clock behind), and maybe its 5xx (a function that
// timed out). The API answering without the token, and not with it, tells the first; one bad answer must not sign
// the user out.
async function unreadableAnswer(apiUrl, headers) {
  if (!(await reachable(apiUrl))) {
    return new ApiError(0, "network", "The API could not be reached. Check your connection and try again.");
  }
  if (await tokenAccepted(apiUrl, headers)) {
    return new ApiError(0, "no_answer", "The API did not answer this request. Try again.");
  }
  return new ApiError(401, "unauthorized", "The API no longer accepts your session. Sign in again.");
}

export async function call(method, path, body) {
  const { apiUrl } = await config();
  const jwt = token();
  if (!jwt) throw new ApiError(401, "unauthorized", "Sign in to continue.");
  // The gateway's own 401 carries no CORS headers, so the browser cannot read it: an expired token is caught here.
  if (expired(jwt)) throw new ApiError(401, "unauthorized", "Your session has ended. Sign in again.");
  const headers = { Authorization: `Bearer ${jwt}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`${apiUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw await unreadableAnswer(apiUrl, { Authorization: headers.Authorization, Accept: "application/json" });
  }
  const payload = await response.json().catch(() => null);
  if (response.ok) return payload;
  const error = payload?.error ?? {};
  if (response.status === 401) throw new ApiError(401, "unauthorized", "Your session has ended. Sign in again.");
  throw new ApiError(
    response.status,
    error.code ?? `http_${response.status}`,
    error.message ?? payload?.message ?? "Something went wrong. Try again.",
    response.headers.get("Retry-After"),
  );
}
