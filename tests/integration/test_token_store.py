"""The token store against the Xero emulator: single-flight refresh, rotation saved before use, recovery within
Xero's grace period, and invalid_grant surfacing as a revoked token set. No token ever reaches a log line."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from xero_sync import xero_identity
from xero_sync.models import TokenSetRef
from xero_sync.tokens import LEASE_SECONDS, TokenRefreshBusy, TokenSaveFailed, TokenSetRevoked, TokenStore
from xero_sync.xero_identity import TokenSet, XeroIdentity


def link_token_set(xero, tenant_ids: list[str]) -> TokenSet:
    verifier = xero_identity.new_code_verifier()  # through the module: the secrets guard records it
    identity = XeroIdentity()
    callback = xero.consent(identity.authorization_url("state-1", verifier), tenant_ids)
    assert callback["state"] == "state-1"
    return identity.exchange_code(callback["code"], verifier)


def make_stale(aws, store: TokenStore, token_set_id: str) -> TokenSet:
    """As if 29 minutes had passed for us: the stored access token is about to expire."""
    stale = store.read(token_set_id)
    stale.expires_at = time.time() + 30
    aws.session.client("secretsmanager").put_secret_value(
        SecretId=f"xero-sync-local/xero/token-sets/{token_set_id}", SecretString=stale.to_secret_string()
    )
    return stale


@pytest.fixture
def stored(aws, xero):
    tenant = xero.create_org("Token Co")
    token_set = link_token_set(xero, [tenant])
    store = TokenStore()
    return store, store.create("practice-a", token_set, {tenant}), tenant


def test_a_fresh_access_token_is_used_without_calling_xero(xero, stored):
    store, token_set_id, _ = stored
    calls_before = xero.token_calls()
    assert store.fresh(token_set_id).seconds_left() > 1700
    assert xero.token_calls() == calls_before


def test_a_stale_token_set_is_refreshed_once_and_the_rotation_is_saved(aws, xero, stored):
    store, token_set_id, tenant = stored
    stale = make_stale(aws, store, token_set_id)
    fresh = store.fresh(token_set_id)
    saved = store.read(token_set_id)
    assert saved.refresh_token.get_secret_value() == fresh.refresh_token.get_secret_value()
    assert saved.refresh_token.get_secret_value() != stale.refresh_token.get_secret_value()
    assert [c.tenant_id for c in XeroIdentity().connections(fresh)] == [tenant]


def test_an_access_token_xero_refused_is_refreshed_however_long_our_clock_gives_it(aws, xero, stored):
    # Given a token set our clock says has 29 minutes left, which Xero's clock says has expired
    store, token_set_id, tenant = stored
    refused = store.read(token_set_id)
    xero.admin("POST", "/clock", json={"advance": 1800})
    assert refused.seconds_left() > 1700
    # When a caller names the access token Xero answered 401 to
    fresh = store.fresh(token_set_id, refused=refused.access_token.get_secret_value())
    # Then it gets another one, refreshed and saved, which Xero accepts
    assert fresh.access_token.get_secret_value() != refused.access_token.get_secret_value()
    assert store.read(token_set_id).refresh_token.get_secret_value() == fresh.refresh_token.get_secret_value()
    assert [c.tenant_id for c in XeroIdentity().connections(fresh)] == [tenant]
    # And a second caller naming the same refused token gets the replacement, without another refresh
    calls = xero.token_calls()
    again = store.fresh(token_set_id, refused=refused.access_token.get_secret_value())
    assert again.access_token.get_secret_value() == fresh.access_token.get_secret_value()
    assert xero.token_calls() == calls


def test_a_refresh_whose_save_failed_is_recovered_within_the_grace_period(aws, xero, stored):
    store, token_set_id, tenant = stored
    make_stale(aws, store, token_set_id)
    secrets = aws.session.client("secretsmanager")

    def fail_put(**_):
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "boom"}}, "PutSecretValue")

    secrets.meta.events.register("before-call.secrets-manager.PutSecretValue", fail_put)
    # When the rotated token set cannot be saved, the refresh fails and nothing is lost...
    with pytest.raises(TokenSaveFailed):
        TokenStore(secrets=secrets, sleep=lambda _: None).fresh(token_set_id)
    # ...because the refresh token still stored is honoured by Xero for its grace period
    recovered = TokenStore().fresh(token_set_id)
    assert [c.tenant_id for c in XeroIdentity().connections(recovered)] == [tenant]
    assert store.read(token_set_id).refresh_token.get_secret_value() == recovered.refresh_token.get_secret_value()


def test_a_caller_with_a_deadline_waits_for_another_holders_refresh_only_until_then(aws, xero, stored):
    # Given a stale token set whose refresh lease another holder has just taken (and keeps for LEASE_SECONDS)
    store, token_set_id, _ = stored
    make_stale(aws, store, token_set_id)
    TokenSetRef(token_set_id=token_set_id).update(
        actions=[
            TokenSetRef.lease_owner.set("another-holder"),
            TokenSetRef.lease_expires_at.set(datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS)),
        ]
    )
    # When a caller that must answer within a second asks for a fresh set
    calls_before, started = xero.token_calls(), time.monotonic()
    with pytest.raises(TokenRefreshBusy):
        TokenStore(deadline=started + 1).fresh(token_set_id)
    # Then it gives up by then, not after the lease, and Xero was not called
    assert time.monotonic() - started < 3
    assert xero.token_calls() == calls_before


def test_a_revoked_token_set_surfaces_as_revoked(aws, xero, stored):
    store, token_set_id, _ = stored
    XeroIdentity().revoke(store.read(token_set_id).refresh_token)
    make_stale(aws, store, token_set_id)
    with pytest.raises(TokenSetRevoked, match="invalid_grant"):
        store.fresh(token_set_id)


def test_deleting_a_token_set_removes_its_secret(aws, stored):
    store, token_set_id, _ = stored
    store.delete(token_set_id)
    names = [s["Name"] for s in aws.session.client("secretsmanager").list_secrets()["SecretList"]]
    assert not any(token_set_id in name for name in names)


def test_token_values_never_show_in_a_repr_or_a_dump(aws, xero, stored):
    # (Log lines are checked for every test of the session, by tests/conftest.py.)
    store, token_set_id, _ = stored
    make_stale(aws, store, token_set_id)
    token_set = store.fresh(token_set_id)
    secret_values = [token_set.access_token.get_secret_value(), token_set.refresh_token.get_secret_value()]
    printed = repr(token_set) + str(token_set) + json.dumps(token_set.model_dump(mode="json"))
    assert all(value not in printed for value in secret_values)


@pytest.mark.parametrize("secret", ["refresh token", "access token", "code", "verifier", "client secret"])
def test_the_log_check_sees_a_leak_of_every_kind_of_secret(xero, stored, every_log_line, secret):
    """The guard itself: a secret written to a log line is found (then removed, so this test passes)."""
    from local.stack.provision import LOCAL_XERO_APP
    from tests.conftest import SECRETS
    from xero_sync.observability import logger

    store, token_set_id, tenant = stored
    token_set = store.read(token_set_id)
    values = {
        "refresh token": token_set.refresh_token.get_secret_value(),
        "access token": token_set.access_token.get_secret_value(),
        "code": xero.consent(XeroIdentity().authorization_url("s", "v" * 43), [tenant])["code"],
        "verifier": xero_identity.new_code_verifier(),
        "client secret": LOCAL_XERO_APP["client_secret"],
    }
    logger.debug("oops", extra={"detail": f"prefix-{values[secret]}-suffix"})
    assert len(SECRETS.leaks(every_log_line.lines[-1:])) == 1
    every_log_line.lines.pop()


def token_secrets(aws) -> list[str]:
    secrets = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    return [s["Name"] for s in secrets if "/token-sets/" in s["Name"]]


def test_a_token_set_whose_ref_could_not_be_written_leaves_no_secret(aws, xero, monkeypatch):
    # Given DynamoDB failing the ref's write once the secret is made
    tenant = xero.create_org("Token Co")
    token_set = link_token_set(xero, [tenant])

    def failing(self: TokenSetRef, *args, **kwargs):
        raise PutError("DynamoDB did not take the ref")

    monkeypatch.setattr(TokenSetRef, "save", failing)
    # When the token set is created, the failure is raised, and no secret is left that no ref names
    with pytest.raises(PutError):
        TokenStore().create("practice-a", token_set, {tenant})
    assert token_secrets(aws) == []


def test_a_token_set_loses_its_organisations_one_by_one_and_goes_with_the_last(aws, xero):
    alpha, beta = xero.create_org("Alpha Ltd"), xero.create_org("Beta Ltd")
    store = TokenStore()
    token_set_id = store.create("practice-a", link_token_set(xero, [alpha, beta]), {alpha, beta})

    store.forget_tenant(token_set_id, alpha)
    assert TokenSetRef.get(token_set_id).tenant_ids == {beta} and len(token_secrets(aws)) == 1

    store.forget_tenant(token_set_id, beta)
    assert TokenSetRef.count() == 0 and token_secrets(aws) == []
    store.forget_tenant(token_set_id, beta)  # forgotten already: nothing to do
