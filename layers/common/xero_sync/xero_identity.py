"""Xero's identity side: the OAuth2 authorisation code flow with PKCE (authlib), token refresh and revocation,
and the connections (which organisations a token set reaches).

Token values are held as SecretStr: they never appear in a repr, a log line or an error message.

authlib, joserfc (with cryptography) and Powertools' parameters (~100 ms to import together) are imported where they
are called: the functions that only carry token sets (the nightly dispatch, the purge) never pay for them at a cold
start.
"""

import json
import secrets
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import requests
from pydantic import BaseModel, Field, SecretStr
from requests.adapters import HTTPAdapter

from xero_sync import aws_clients
from xero_sync.config import get_settings

if TYPE_CHECKING:
    from authlib.integrations.requests_client import OAuth2Session

HTTP_TIMEOUT = (3.05, 20)
# A call with less time than this left before its caller's deadline is not started: it could not get an answer.
LEAST_CALL_SECONDS = 0.5


class XeroAppCredentials(BaseModel):
    client_id: str = Field(min_length=1)
    client_secret: SecretStr


class TokenSet(BaseModel):
    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: float  # epoch seconds
    scope: str = ""

    @classmethod
    def from_response(cls, token: dict[str, Any], now: float | None = None) -> "TokenSet":
        issued = now if now is not None else time.time()
        return cls(
            access_token=SecretStr(token["access_token"]),
            refresh_token=SecretStr(token["refresh_token"]),
            expires_at=float(token.get("expires_at") or issued + float(token["expires_in"])),
            scope=token.get("scope", ""),
        )

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_at - (now if now is not None else time.time())

    def auth_event_id(self) -> str:
        """Xero stamps each consent's connections with the id its access token carries. A token that is not a JWT,
        or carries no such id, is not what Xero issues: without the id, a consent's connections cannot be told from
        every other connection of the Xero user, so nothing may be linked from it."""
        from joserfc import jws
        from joserfc.errors import JoseError

        try:
            claims = json.loads(jws.extract_compact(self.access_token.get_secret_value().encode()).payload)
        except (JoseError, ValueError, UnicodeDecodeError):
            raise UnexpectedXeroAnswer("the access token is not a JWT") from None
        value = claims.get("authentication_event_id") if isinstance(claims, dict) else None
        if not isinstance(value, str) or not value:
            raise UnexpectedXeroAnswer("the access token names no authentication event")
        return value

    def to_secret_string(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token.get_secret_value(),
                "refresh_token": self.refresh_token.get_secret_value(),
                "expires_at": self.expires_at,
                "scope": self.scope,
            }
        )

    @classmethod
    def from_secret_string(cls, value: str) -> "TokenSet":
        return cls.model_validate(json.loads(value))


class Connection(BaseModel):
    id: str
    tenant_id: str = Field(alias="tenantId")
    tenant_type: str = Field(alias="tenantType")
    tenant_name: str | None = Field(default=None, alias="tenantName")
    auth_event_id: str | None = Field(default=None, alias="authEventId")
    created_date_utc: str | None = Field(default=None, alias="createdDateUtc")
    updated_date_utc: str | None = Field(default=None, alias="updatedDateUtc")

    def made_by_this_consent(self) -> bool:
        """A consent creates a connection (created == updated) or re-stamps an earlier one (updated later)."""
        return self.created_date_utc is None or self.created_date_utc == self.updated_date_utc


class XeroAuthError(Exception):
    """Xero refused an OAuth request; `error` is its OAuth2 error code (invalid_grant, access_denied...)."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Xero refused the request: {error}")
        self.error = error


class XeroUnavailable(Exception):
    """Xero could not be reached or answered with a server error: worth trying again later."""


class UnexpectedXeroAnswer(XeroUnavailable):
    """Xero answered, but not as Xero answers (a body of the wrong shape, an access token that is not a JWT). A
    refresh tries again later, as after an outage; a link fails closed (linking.complete_link)."""


def app_credentials() -> XeroAppCredentials:
    # Cached for five minutes: a rotated app secret is picked up without a redeploy.
    raw = aws_clients.cached_secrets().get(get_settings().xero_app_secret_name, transform="json", max_age=300)
    return XeroAppCredentials.model_validate(raw)


def new_code_verifier() -> str:
    # 64 characters of the unreserved set (RFC 7636 asks for 43-128), from 48 random bytes.
    return secrets.token_urlsafe(48)


@lru_cache(maxsize=1)
def _adapter() -> HTTPAdapter:
    return HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)


class XeroIdentity:
    """`deadline` (time.monotonic()) bounds every call for a caller that must answer by then (an API request): each
    call's timeouts are cut to the time left, and a call with too little left fails as if Xero were away."""

    def __init__(self, credentials: XeroAppCredentials | None = None, deadline: float | None = None) -> None:
        settings = get_settings()
        self._deadline = deadline
        self._credentials = credentials or app_credentials()
        self._login = str(settings.xero_login_url).rstrip("/")
        self._identity = str(settings.xero_identity_url).rstrip("/")
        self._api = str(settings.xero_api_url).rstrip("/")
        self._redirect_uri = str(settings.xero_redirect_uri)
        self._scopes = settings.xero_scopes

    def _timeout(self) -> tuple[float, float]:
        if self._deadline is None:
            return HTTP_TIMEOUT
        left = self._deadline - time.monotonic()
        if left < LEAST_CALL_SECONDS:
            raise XeroUnavailable("no time left for Xero before the caller's deadline")
        connect, read = HTTP_TIMEOUT
        return min(connect, left), min(read, left)

    def _session(self, token: TokenSet | None = None) -> "OAuth2Session":
        from authlib.integrations.requests_client import OAuth2Session

        session = OAuth2Session(
            client_id=self._credentials.client_id,
            client_secret=self._credentials.client_secret.get_secret_value(),
            scope=self._scopes,
            redirect_uri=self._redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name, not a secret
        )
        session.mount("https://", _adapter())
        session.mount("http://", _adapter())
        if token is not None:
            session.token = {"access_token": token.access_token.get_secret_value(), "token_type": "Bearer"}
        return session

    def authorization_url(self, state: str, code_verifier: str) -> str:
        url, _ = self._session().create_authorization_url(
            f"{self._login}/identity/connect/authorize", state=state, code_verifier=code_verifier
        )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        return self._token_request(
            lambda s: s.fetch_token(
                f"{self._identity}/connect/token", code=code, code_verifier=code_verifier, timeout=self._timeout()
            )
        )

    def refresh(self, refresh_token: SecretStr) -> TokenSet:
        return self._token_request(
            lambda s: s.refresh_token(
                f"{self._identity}/connect/token",
                refresh_token=refresh_token.get_secret_value(),
                timeout=self._timeout(),
            )
        )

    def revoke(self, refresh_token: SecretStr) -> None:
        try:
            response = self._session().revoke_token(
                f"{self._identity}/connect/revocation",
                token=refresh_token.get_secret_value(),
                token_type_hint="refresh_token",  # noqa: S106 - a hint's name, not a secret
                timeout=self._timeout(),
            )
        except requests.RequestException as error:
            raise XeroUnavailable(f"revocation failed: {type(error).__name__}") from None
        if response.status_code >= 500:
            raise XeroUnavailable(f"revocation answered {response.status_code}")

    def connections(self, token: TokenSet, auth_event_id: str | None = None) -> list[Connection]:
        """The token's connections; with `auth_event_id`, only those that consent made or re-stamped (Xero filters
        them, and so do we: a connection of another consent must never be taken for one of this one)."""
        params = {"authEventId": auth_event_id} if auth_event_id else None
        response = self._call(token, "GET", f"{self._api}/connections", params=params)
        self._raise_for_status(response)
        try:
            connections = [Connection.model_validate(item) for item in response.json()]
        except (ValueError, TypeError):  # a body that is not the list of connections
            raise UnexpectedXeroAnswer("the connections endpoint answered with no connections") from None
        if auth_event_id is None:
            return connections
        return [c for c in connections if c.auth_event_id == auth_event_id]

    def delete_connection(self, token: TokenSet, connection_id: str) -> bool:
        """True when Xero removed it, False when it was already gone."""
        response = self._call(token, "DELETE", f"{self._api}/connections/{connection_id}")
        if response.status_code == 404:
            return False
        self._raise_for_status(response)
        return True

    def _call(self, token: TokenSet, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response: requests.Response = self._session(token).request(method, url, timeout=self._timeout(), **kwargs)
            return response
        except requests.RequestException as error:
            raise XeroUnavailable(f"{method} {url.rsplit('/', 1)[-1]} failed: {type(error).__name__}") from None

    @staticmethod
    def _raise_for_status(response: requests.Response) -> None:
        if response.status_code in (401, 403):
            raise XeroAuthError("AuthenticationUnsuccessful")
        if response.status_code >= 500 or response.status_code == 429:
            raise XeroUnavailable(f"Xero answered {response.status_code}")
        if response.status_code >= 400:
            raise XeroAuthError(f"http_{response.status_code}")

    def _token_request(self, call: Any) -> TokenSet:
        from authlib.integrations.base_client.errors import OAuthError

        try:
            token = call(self._session())
        except OAuthError as error:
            raise XeroAuthError(str(error.error or "oauth_error")) from None
        except requests.RequestException as error:
            raise XeroUnavailable(f"token endpoint failed: {type(error).__name__}") from None
        except (ValueError, TypeError):  # a body that is not JSON (a cut answer): the code, if any, is spent
            raise UnexpectedXeroAnswer("the token endpoint answered with no token") from None
        try:
            return TokenSet.from_response(dict(token))
        except (KeyError, TypeError, ValueError):  # JSON, but not a token set
            raise UnexpectedXeroAnswer("the token endpoint answered with no token") from None
