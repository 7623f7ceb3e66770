"""Every response body the emulator gives validates against Xero's official OpenAPI descriptions."""

from __future__ import annotations

import pytest

from local.xero_emulator.resources import RESOURCES
from tests.tooling.emulator import spec
from tests.tooling.emulator.helpers import Xero

# GET paths in the spec for single records, where the parameter is not simply the resource's id field.
SINGLE_PATHS = {"TaxRates": "/TaxRates/{TaxType}", "Journals": "/Journals/{JournalID}"}


def _single_path(name: str) -> str | None:
    if name in SINGLE_PATHS:
        return SINGLE_PATHS[name]
    candidate = f"/{name}/{{{RESOURCES[name].id_field}}}"
    return candidate if candidate in spec.load("xero_accounting.yaml")["paths"] else None


@pytest.fixture(scope="module")
def small_org_session(tmp_path_factory: pytest.TempPathFactory):
    from local.xero_emulator import EmulatorConfig, XeroEmulator
    from local.xero_emulator.config import RegisteredApp
    from tests.tooling.emulator.helpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI

    config = EmulatorConfig(apps=[RegisteredApp(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], "Spec App")])
    config.rate_limits.enabled = False
    with XeroEmulator(config) as emulator:
        xero = Xero(emulator.base_url)
        org = xero.create_org("Spec Co", seed=3, size="small", counts={"ContactGroups": 8})
        # A few edits so deleted, voided, archived and edited records are all present.
        assert xero.admin("POST", f"/orgs/{org['tenantId']}/changes", json={"seed": 1, "count": 40}).ok
        tokens = xero.login([org["tenantId"]])
        yield xero, org["tenantId"], tokens["access_token"]


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_list_and_single_responses_validate_against_the_spec(small_org_session, name: str) -> None:
    # Given a connected small organisation with edits applied
    xero, tenant_id, token = small_org_session
    accounting = spec.load("xero_accounting.yaml")
    resource = RESOURCES[name]
    list_schema = spec.response_schema(accounting, f"/{name}")
    variants: list[dict] = [{}]
    if resource.paged:
        variants.append({"page": 1})
    if resource.page_size:
        variants.append({"page": 2, "pageSize": 2})
    if name in ("Contacts", "TrackingCategories"):
        variants.append({"includeArchived": "true"})
    if name == "BankTransfers":
        variants.append({"includeDeleted": "true"})
    first = None
    for params in variants:
        # When the list is read in each of its forms
        response = xero.get(name, token, tenant_id, **params)
        # Then it is 200 and validates against the operation's response schema
        assert response.status_code == 200, response.text
        body = response.json()
        assert body[resource.key], f"{name} {params} returned no records"
        assert spec.errors("xero_accounting.yaml", list_schema, body) == [], params
        first = first or body[resource.key][0]
    single_path = _single_path(name)
    if single_path is None:
        return
    # When one record is read by its id, Then that response validates too
    key = str(first[resource.id_field])
    response = xero.get(f"{name}/{key}", token, tenant_id)
    assert response.status_code == 200, response.text
    single_schema = spec.response_schema(accounting, single_path)
    assert spec.errors("xero_accounting.yaml", single_schema, response.json()) == []


def test_ground_truth_records_validate_against_the_spec(small_org_session) -> None:
    # Given the admin ground truth for every resource, Then each record validates as part of its list schema
    xero, tenant_id, _ = small_org_session
    accounting = spec.load("xero_accounting.yaml")
    for name, resource in RESOURCES.items():
        records = xero.records(tenant_id, name)
        schema = spec.response_schema(accounting, f"/{name}")
        assert spec.errors("xero_accounting.yaml", schema, {resource.key: records}) == [], name


def test_error_bodies_validate_against_the_spec_error_schema(small_org_session) -> None:
    # Given a bad where clause and a bad pageSize, When Xero refuses them, Then the 400 body matches Error
    xero, tenant_id, token = small_org_session
    accounting = spec.load("xero_accounting.yaml")
    error_schema = {"$ref": "#/components/schemas/Error"}
    for params in ({"where": 'Status=="AUTHORISED" &&'}, {"page": 1, "pageSize": 0}):
        response = xero.get("Invoices", token, tenant_id, **params)
        assert response.status_code == 400
        assert spec.errors("xero_accounting.yaml", error_schema, response.json()) == []
    assert accounting["components"]["schemas"]["Error"]


def test_identity_responses_validate_against_the_identity_spec(small_org_session) -> None:
    # Given a connected user, When the connections and a fresh token set are read
    xero, _, token = small_org_session
    identity = spec.load("xero-identity.yaml")
    connections = xero.connections(token)
    assert connections.status_code == 200
    # Then /connections matches the Connections array schema
    assert spec.errors("xero-identity.yaml", spec.response_schema(identity, "/Connections"), connections.json()) == []
    # And a token set matches AccessToken
    tokens = xero.login()
    assert spec.errors("xero-identity.yaml", {"$ref": "#/components/schemas/AccessToken"}, tokens) == []


# Xero's bodies for the errors the spec leaves out, as observed (docs/reference/xero-api-facts.md, "Error responses").
PROBLEM_KEYS = {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}


def test_the_spec_describes_only_400_for_the_accounting_reads_and_the_other_errors_have_xeros_observed_shape(
    small_org_session,
) -> None:
    xero, tenant_id, token = small_org_session
    accounting = spec.load("xero_accounting.yaml")
    # The spec gives no schema for 401, 403, 404 or 429 on any read: there is nothing there to validate against
    described = {status for item in accounting["paths"].values() for status in item.get("get", {}).get("responses", {})}
    assert described & {"401", "403", "404", "429"} == set(), described
    # So each is held to the shape Xero is seen to answer with: a problem object naming its status and detail
    bad_token = xero.get("Invoices", "not-a-jwt", tenant_id)
    wrong_tenant = xero.get("Invoices", token, "00000000-0000-4000-8000-000000000000")
    for response, status, detail in (
        (bad_token, 401, "AuthenticationUnsuccessful"),
        (wrong_tenant, 403, "AuthenticationUnsuccessful"),
    ):
        body = response.json()
        assert response.status_code == status and set(body) == PROBLEM_KEYS, body
        assert (body["Status"], body["Detail"]) == (status, detail)
        assert isinstance(body["Instance"], str) and body["Extensions"] == {}
    # A 404 and a 429 come without a documented body: what matters is the status and, for a 429, its headers
    missing = xero.get("Invoices/00000000-0000-4000-8000-000000000000", token, tenant_id)
    assert missing.status_code == 404
    xero.admin("POST", "/faults", json={"kind": "429-minute", "tenantId": tenant_id, "retryAfter": 7})
    limited = xero.get("Invoices", token, tenant_id)
    assert limited.status_code == 429
    assert (limited.headers["Retry-After"], limited.headers["X-Rate-Limit-Problem"]) == ("7", "minute")
