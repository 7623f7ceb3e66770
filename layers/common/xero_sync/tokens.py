"""The token store: the one module that touches Xero token sets.

A token set (one consent: one Xero user, one or more organisations) lives in one Secrets Manager secret under the
app's prefix, encrypted with the app's KMS key. A TokenSetRef item names the secret and carries the refresh lease.

Refresh rules, from Xero's: refresh tokens rotate on every use and two holders refreshing one token set get
`invalid_grant`. So a refresh is single-flight per token set (a conditional-write lease); the rotated token set is
saved before its access token is used; and when a refresh's answer or its save is lost, the refresh token still in
the secret is the one Xero keeps honouring for its 30-minute grace period, so the next attempt recovers.
"""

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, UpdateError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
    wait_incrementing,
)

from xero_sync import aws_clients
from xero_sync.config import get_settings
from xero_sync.models import TokenSetRef
from xero_sync.observability import logger
from xero_sync.xero_identity import TokenSet, XeroAuthError, XeroIdentity, XeroUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

LEASE_SECONDS = 30
WAIT_STEP_SECONDS = 0.2
SAVE_ATTEMPTS = 3
# A refresh Xero did not answer (or whose answer was lost) is tried again at once, while the lease has time left:
# the refresh token kept in the secret is honoured for Xero's 30-minute grace only, and the next caller may come
# hours later.
REFRESH_ATTEMPTS = 3


class TokenSetRevoked(Exception):
    """Xero no longer honours this token set (invalid_grant): its clients must be relinked."""

    def __init__(self, token_set_id: str, reason: str) -> None:
        super().__init__(f"token set {token_set_id} is no longer valid: {reason}")
        self.token_set_id = token_set_id
        self.reason = reason


class TokenRefreshBusy(Exception):
    """Another holder kept the refresh lease longer than we could wait: try again later."""


class TokenSaveFailed(Exception):
    """Xero rotated the token set but the new one could not be saved: the refresh token left in the secret is
    honoured for Xero's 30-minute grace only, so the caller must try again within minutes, not hours."""


class TokenStore:
    def __init__(
        self,
        identity_factory: Callable[[], XeroIdentity] = XeroIdentity,
        secrets: "SecretsManagerClient | None" = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
    ) -> None:
        """`deadline` (time.monotonic()) cuts every wait short for a caller that must answer by then: waiting out
        another holder's lease, and trying a refresh again."""
        self._identity_factory = identity_factory
        self._secrets = secrets or aws_clients.secrets_manager()
        self._sleep = sleep
        self._deadline = deadline

    def _at_most(self, seconds: float) -> float:
        """`seconds`, or the time left before the deadline if that is less."""
        return seconds if self._deadline is None else min(seconds, max(0.0, self._deadline - time.monotonic()))

    # --- lifecycle ----------------------------------------------------------------------------------------------------
    def create(self, practice_id: str, token_set: TokenSet, tenant_ids: set[str]) -> str:
        token_set_id = str(uuid.uuid4())
        secret_name = f"{get_settings().token_secret_prefix}{token_set_id}"
        self._secrets.create_secret(
            Name=secret_name,
            KmsKeyId=get_settings().token_kms_key_id,
            SecretString=token_set.to_secret_string(),
            Description="A Xero OAuth token set (one consent)",
        )
        try:
            TokenSetRef(
                token_set_id=token_set_id,
                practice_id=practice_id,
                secret_name=secret_name,
                tenant_ids=tenant_ids,
                created_at=datetime.now(UTC),
            ).save(condition=TokenSetRef.token_set_id.does_not_exist())
        except Exception:
            # A secret no ref names could never be found again. Its name is ours alone, so deleting it is safe; a
            # ref written after all (its answer lost) is left naming nothing.
            self._secrets.delete_secret(SecretId=secret_name, ForceDeleteWithoutRecovery=True)
            raise
        return token_set_id

    def forget_tenant(
        self, token_set_id: str | None, tenant_id: str, before_delete: Callable[[], None] | None = None
    ) -> None:
        """The organisation leaves the token set (its client moved to another consent, was refused, or is gone), and
        the set goes once it reaches none, `before_delete` called first. Not revoked here: Xero ties connections to
        the user, and a newer consent of that user relies on them (docs/link-flow.md)."""
        if token_set_id is None:
            return
        try:
            ref = self._ref(token_set_id)
            ref.update(
                actions=[TokenSetRef.tenant_ids.delete({tenant_id})], condition=TokenSetRef.token_set_id.exists()
            )
        except (DoesNotExist, UpdateError):
            return  # forgotten meanwhile
        if not ref.tenant_ids:
            if before_delete is not None:
                before_delete()
            self.delete(token_set_id)

    def read(self, token_set_id: str) -> TokenSet:
        ref = self._ref(token_set_id)
        value = self._secrets.get_secret_value(SecretId=ref.secret_name)["SecretString"]
        return TokenSet.from_secret_string(value)

    def delete(self, token_set_id: str, only_within: set[str] | None = None) -> bool:
        """Removes the secret at once (no recovery window: a revoked token set must not linger) and its ref; True
        when this call did. With `only_within`, a set holding an organisation outside it is kept: the caller's proof
        that no client names the set covered those organisations only."""
        try:
            ref = self._ref(token_set_id)
        except DoesNotExist:
            return False
        if only_within is not None and not ref.tenant_ids <= only_within:
            return False
        try:
            self._secrets.delete_secret(SecretId=ref.secret_name, ForceDeleteWithoutRecovery=True)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        ref.delete()
        return True

    # --- use ----------------------------------------------------------------------------------------------------------
    def fresh(self, token_set_id: str, refused: str | None = None) -> TokenSet:
        """A token set whose access token has more than TOKEN_REFRESH_MARGIN_SECONDS left, refreshing it if need be.

        `refused` is an access token Xero answered 401 to: Xero's clock decides when a token has expired, and ours
        may run behind it, so that token is refreshed however long our clock says it has left (unless someone has
        replaced it meanwhile)."""
        current = self.read(token_set_id)
        if usable(current, refused):
            return current
        return self._refresh(token_set_id, current, refused)

    def _refresh(self, token_set_id: str, stale: TokenSet, refused: str | None) -> TokenSet:
        owner = str(uuid.uuid4())

        def refreshed() -> TokenSet | None:
            """The refreshed token set, by us under the lease or by its holder meanwhile; None while neither."""
            if self._take_lease(token_set_id, owner):
                try:
                    return self._refresh_holding_lease(token_set_id, stale, refused)
                finally:
                    self._release_lease(token_set_id, owner)
            current = self.read(token_set_id)
            return current if usable(current, refused) else None

        def busy(_: RetryCallState) -> NoReturn:
            raise TokenRefreshBusy(f"token set {token_set_id} stayed leased longer than this caller could wait")

        waiting = Retrying(
            retry=retry_if_result(lambda found: found is None),
            stop=stop_after_delay(self._at_most(LEASE_SECONDS + 5)),
            wait=wait_fixed(WAIT_STEP_SECONDS),
            sleep=self._sleep,
            retry_error_callback=busy,
        )
        token_set = waiting(refreshed)
        assert token_set is not None  # a None is tried again until the wait ends (TokenRefreshBusy)
        return token_set

    def _refresh_holding_lease(self, token_set_id: str, stale: TokenSet, refused: str | None) -> TokenSet:
        current = self.read(token_set_id)
        rotated_meanwhile = current.refresh_token.get_secret_value() != stale.refresh_token.get_secret_value()
        if rotated_meanwhile and usable(current, refused):
            return current  # refreshed by someone else between our read and our lease
        rotated = self._refresh_at_xero(token_set_id, current)
        self._save(token_set_id, rotated)
        with contextlib.suppress(UpdateError):  # the token set was removed meanwhile (unlinked): never re-create it
            TokenSetRef(token_set_id=token_set_id).update(
                actions=[TokenSetRef.refreshed_at.set(datetime.now(UTC))], condition=TokenSetRef.token_set_id.exists()
            )
        return rotated

    def _refresh_at_xero(self, token_set_id: str, current: TokenSet) -> TokenSet:
        identity = self._identity_factory()
        attempts = Retrying(
            retry=retry_if_exception_type(XeroUnavailable),
            # Only while the lease has time left: past half of it, another holder may take it over.
            stop=stop_after_attempt(REFRESH_ATTEMPTS) | stop_after_delay(self._at_most(LEASE_SECONDS / 2)),
            wait=wait_incrementing(start=0.5, increment=0.5),
            sleep=self._sleep,
            after=_log_failure("refreshing a token set failed"),
            reraise=True,
        )
        try:
            rotated: TokenSet = attempts(identity.refresh, current.refresh_token)
        except XeroAuthError as error:
            if error.error == "invalid_grant":
                raise TokenSetRevoked(token_set_id, "Xero refused the refresh token (invalid_grant)") from None
            raise
        return rotated

    def _save(self, token_set_id: str, token_set: TokenSet) -> None:
        """Persists a rotated token set before anyone uses it. If every attempt fails, the refresh token left in the
        secret stays valid for Xero's grace period, and the next refresh recovers with it."""
        secret_name = self._ref(token_set_id).secret_name

        def failed(state: RetryCallState) -> NoReturn:
            error = state.outcome.exception() if state.outcome else None
            raise TokenSaveFailed(f"the rotated token set {token_set_id} could not be saved") from error

        attempts = Retrying(
            retry=retry_if_exception_type((ClientError, BotoCoreError)),
            stop=stop_after_attempt(SAVE_ATTEMPTS),
            wait=wait_incrementing(start=0.2, increment=0.2),
            sleep=self._sleep,
            after=_log_failure("saving a rotated token set failed"),
            retry_error_callback=failed,
        )
        attempts(self._secrets.put_secret_value, SecretId=secret_name, SecretString=token_set.to_secret_string())

    # --- the lease ----------------------------------------------------------------------------------------------------
    def _take_lease(self, token_set_id: str, owner: str) -> bool:
        now = datetime.now(UTC)
        try:
            TokenSetRef(token_set_id=token_set_id).update(
                actions=[
                    TokenSetRef.lease_owner.set(owner),
                    TokenSetRef.lease_expires_at.set(now + timedelta(seconds=LEASE_SECONDS)),
                ],
                condition=TokenSetRef.token_set_id.exists()
                & (TokenSetRef.lease_owner.does_not_exist() | (TokenSetRef.lease_expires_at < now)),
            )
        except UpdateError:
            return False
        return True

    def _release_lease(self, token_set_id: str, owner: str) -> None:
        with contextlib.suppress(UpdateError):  # it lapsed and someone else holds it now
            TokenSetRef(token_set_id=token_set_id).update(
                actions=[TokenSetRef.lease_owner.remove(), TokenSetRef.lease_expires_at.remove()],
                condition=TokenSetRef.lease_owner == owner,
            )

    def _ref(self, token_set_id: str) -> TokenSetRef:
        return TokenSetRef.get(token_set_id, consistent_read=True)


def usable(token_set: TokenSet, refused: str | None) -> bool:
    """Whether a caller can use this token set now: not near its expiry (a sync's next calls must not race it), and
    not the access token Xero refused."""
    if refused is not None and token_set.access_token.get_secret_value() == refused:
        return False
    return token_set.seconds_left() > get_settings().token_refresh_margin_seconds


def _log_failure(message: str) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(message, extra={"attempt": state.attempt_number, "error": type(error).__name__})

    return log
