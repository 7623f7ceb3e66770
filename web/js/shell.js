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

// A screen's alert: a failed read's message goes when a read succeeds, an action's failure only when an action does
// (the reloads and polls of a sync would take it away within a second). `act` runs an action, says it is `done`, and
// reads the screen again (`reload`).
export function screenAlert(where, reload) {
  let fromRead = false;
  const say = (error, read) => {
    failed(error, where);
    fromRead = read;
  };
  return {
    readFailed: (error) => say(error, true),
    actionFailed: (error) => say(error, false),
    readSucceeded() {
      if (fromRead) where.textContent = "";
      fromRead = false;
    },
    act: (work, done) => async () => {
      try {
        if ((await work()) !== false) {
          where.textContent = ""; // what failed before (a 429, a read) no longer holds
          if (done) notice(typeof done === "function" ? done() : done);
        }
        await reload();
      } catch (error) {
        say(error, false);
      }
    },
  };
}
