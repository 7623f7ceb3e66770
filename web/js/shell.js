// What every screen shares with the shell: the notice region, navigation, and what a failed call does.
import { ApiError, describe, signOut } from "./api.js";

const noticeRegion = document.getElementById("notice");

export function notice(text, kind = "info") {
  noticeRegion.dataset.kind = kind;
  noticeRegion.dataset.at = String(Date.now());
  noticeRegion.textContent = text;
}

// A notice belongs to the action that caused it: the next screen after a few seconds starts without it.
export function clearStaleNotice() {
  if (Date.now() - Number(noticeRegion.dataset.at ?? 0) > 4000) noticeRegion.textContent = "";
}

export function navigate(hash) {
  if (window.location.hash === hash) window.dispatchEvent(new Event("console:route"));
  else window.location.hash = hash;
}

// A 401: the session has ended (failed() opens the sign-in); the screen stops reading.
export const endsSession = (error) => error instanceof ApiError && error.status === 401;

// What every screen does with a failed call: a 401 ends the session, anything else is said where it happened.
export function failed(error, where) {
  if (endsSession(error)) {
    signOut();
    notice(error.message, "error");
    navigate("#/sign-in");
    return;
  }
  const text = describe(error);
  if (where) {
    where.replaceChildren(text);
    where.dataset.kind = "error";
  } else {
    notice(text, "error");
  }
}
