// The Xero Organisation view: the data imported for a client as Xero shows it. GET /clients/{id}/xero gives the
// organisation record and, per resource, records and freshness; GET /clients/{id}/xero/{resource} pages through a
// resource's records. An API without these routes (404 route_not_found) gets a message, not a broken screen.
import { ApiError, call } from "../api.js";
import { failed } from "../shell.js";
import { count, exactTime, fill, h, when } from "../ui.js";

const PAGE_SIZE = 20;
// The columns people look for first, per resource; any other resource shows its first plain fields.
const COLUMNS = {
  Invoices: ["InvoiceNumber", "Type", "Contact.Name", "Date", "DueDate", "Status", "Total", "AmountDue", "CurrencyCode"],
  CreditNotes: ["CreditNoteNumber", "Type", "Contact.Name", "Date", "Status", "Total"],
  Contacts: ["Name", "EmailAddress", "ContactStatus", "IsCustomer", "IsSupplier"],
  Payments: ["Date", "Amount", "Reference", "Status", "Invoice.InvoiceNumber"],
  BankTransactions: ["Type", "Contact.Name", "Date", "Status", "Total", "Reference"],
  Accounts: ["Code", "Name", "Type", "Status", "Class"],
  Items: ["Code", "Name", "Description"],
  Journals: ["JournalNumber", "JournalDate", "SourceType", "Reference"],
};
const ORGANISATION_FIELDS = ["Name", "LegalName", "OrganisationType", "BaseCurrency", "CountryCode", "FinancialYearEndMonth", "Timezone"];

export async function xeroOrganisation(screen, { params: [clientId, resource], signal }) {
  const heading = h("h1", { tabindex: "-1" }, "Xero Organisation");
  const problem = h("div", { class: "error", role: "alert" });
  const body = h("div", {});
  screen.append(h("p", {}, h("a", { href: `#/clients/${clientId}` }, "← Client Overview")), heading, problem, body);
  let overview;
  try {
    overview = await call("GET", `/clients/${clientId}/xero`);
  } catch (error) {
    if (error instanceof ApiError && error.code === "route_not_found") {
      screen.dataset.unavailable = "true";
      problem.removeAttribute("role");
      problem.replaceChildren(h("p", { class: "notice-text", id: "xero-unavailable" },
        "The Xero Organisation view is not available on this API yet: it cannot show the imported records. " +
        "The Client Overview still shows how many records each resource holds."));
      return;
    }
    failed(error, problem);
    return;
  }
  if (signal.aborted) return;
  const name = overview.organisation?.Name;
  if (name) heading.textContent = `Xero Organisation — ${name}`;
  body.append(organisation(overview.organisation), resources(clientId, overview.resources, resource));
  if (resource) body.append(await records(clientId, resource, signal, problem));
}

function organisation(record) {
  if (!record) return h("p", {}, "The organisation's details have not been imported yet.");
  const rows = ORGANISATION_FIELDS.filter((field) => record[field] !== undefined && record[field] !== null);
  return h("dl", { class: "organisation" }, rows.flatMap((field) => [h("dt", {}, field), h("dd", {}, String(record[field]))]));
}

function resources(clientId, items = [], current) {
  return h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": "Resources table" },
    h("table", { id: "resources" },
      h("caption", {}, "Imported per resource"),
      h("thead", {}, h("tr", {}, ["Resource", "Records", "Last imported", "Last changed in Xero"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((item) =>
        h("tr", { dataset: { resource: item.resource } },
          h("th", { scope: "row" },
            h("a", { href: `#/clients/${clientId}/xero/${item.resource}`, "aria-current": item.resource === current ? "page" : null }, item.resource)),
          h("td", { class: "number" }, count(item.records)),
          h("td", {}, when(item.lastImportedAt)),
          h("td", {}, when(item.lastChangedAt))))),
    ),
  );
}

// Xero's dates come as /Date(1439434356790+0000)/: shown as the day they name (UTC, as Xero means them).
const XERO_DATE = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;

function value(record, path) {
  const found = path.split(".").reduce((inner, key) => inner?.[key], record);
  if (typeof found === "string" && /^\d{4}-\d{2}-\d{2}T/.test(found)) return exactTime(found);
  const xeroDate = typeof found === "string" ? XERO_DATE.exec(found) : null;
  if (xeroDate) return new Date(Number(xeroDate[1])).toISOString().slice(0, 10);
  return found === undefined || found === null ? "—" : typeof found === "object" ? JSON.stringify(found) : String(found);
}

// A resource's records, a page at a time (the API's cursor); Previous page walks back through the cursors seen.
async function records(clientId, resource, signal, problem) {
  const section = h("section", { "aria-labelledby": "records-heading", id: "records" });
  const cursors = [null];
  // A pager's page replaces the button pressed: focus goes to the section's heading (the new page is there).
  const turn = (step) => () => {
    step();
    load().then(() => section.querySelector("#records-heading")?.focus());
  };
  async function load() {
    try {
      const cursor = cursors.at(-1);
      const query = new URLSearchParams({ limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
      const page = await call("GET", `/clients/${clientId}/xero/${resource}?${query}`);
      if (signal.aborted) return;
      const columns = COLUMNS[resource] ?? plainFields(page.items[0]);
      const pager = h("nav", { class: "pager", "aria-label": `${resource} pages` },
        cursors.length > 1 ? h("button", { type: "button", id: "records-previous", onclick: turn(() => cursors.pop()) }, "Previous page") : null,
        page.nextCursor ? h("button", { type: "button", id: "records-next", onclick: turn(() => cursors.push(page.nextCursor)) }, "Next page") : null);
      section.dataset.page = String(cursors.length);
      fill(section,
        h("h2", { id: "records-heading", tabindex: "-1" }, `${resource} — page ${cursors.length}`),
        page.items.length
          ? h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": `${resource} records` },
              h("table", {},
                h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
                h("tbody", {}, page.items.map((record) => h("tr", {}, columns.map((c) => h("td", {}, value(record, c))))))))
          : h("p", {}, "No records."),
        pager,
      );
    } catch (error) {
      failed(error, problem);
    }
  }
  await load();
  return section;
}

function plainFields(record = {}) {
  return Object.keys(record).filter((key) => typeof record[key] !== "object").slice(0, 6);
}
