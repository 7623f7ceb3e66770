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
  configPromise ??= fetch("/config.json", { cache: "no-store" }).then((response) => {
    if (!response.ok) throw new ApiError(response.status, "no_config", "The console is not configured.");
    return response.json();
  });
  return configPromise;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(jwt) {
  sessionStorage.setItem(TOKEN_KEY, jwt);
}

export async function call(method, path, body) {
  const { apiUrl } = await config();
  const jwt = token();
  if (!jwt) throw new ApiError(401, "unauthorized", "Sign in to continue.");
  const headers = { Authorization: `Bearer ${jwt}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${apiUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
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
