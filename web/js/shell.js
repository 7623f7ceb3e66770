// What every screen shares with the shell: the notice region, navigation, and what a failed call does.
import { ApiError, describe, signOut } from "./api.js";

const noticeRegion = document.getElementById("notice");

export function notice(text, kind = "info") {
  noticeRegion.dataset.kind = kind;
  noticeRegion.textContent = text;
}

export function navigate(hash) {
  if (window.location.hash === hash) window.dispatchEvent(new Event("console:route"));
  else window.location.hash = hash;
}

// What every screen does with a failed call: a 401 ends the session, anything else is said where it happened.
export function failed(error, where) {
  if (error instanceof ApiError && error.status === 401) {
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
