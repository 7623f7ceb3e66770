// The actions the Client List and the Client Overview share: Link to Xero, Sync with Xero, Unlink from Xero, Delete.
import { call } from "./api.js";
import { confirmDialog } from "./ui.js";

// Add client (no id) or Link to Xero (a client): the API's authorize URL, then Xero's consent screen. Xero sends
// the browser back to /xero/callback, which completes the link.
export async function startLink(clientId) {
  const started = await call("POST", clientId ? `/clients/${clientId}/link` : "/clients/link");
  window.location.assign(started.authorizeUrl);
}

export function syncNow(clientId) {
  return call("POST", `/clients/${clientId}/sync`, { mode: "incremental" });
}

export async function unlink(client) {
  const sure = await confirmDialog({
    title: `Unlink ${client.name} from Xero?`,
    body:
      "Its data stays in the console, frozen as it is now: it will no longer receive updates from Xero. " +
      "You can link it again at any time with Link to Xero.",
    confirm: "Unlink from Xero",
  });
  if (!sure) return false;
  await call("POST", `/clients/${client.clientId}/unlink`);
  return true;
}

export async function deleteClient(client) {
  const sure = await confirmDialog({
    title: `Delete ${client.name}?`,
    body: "The client and all the Xero data imported for it will be deleted. This cannot be undone.",
    confirm: "Delete client",
    danger: true,
  });
  if (!sure) return false;
  await call("DELETE", `/clients/${client.clientId}`);
  return true;
}
