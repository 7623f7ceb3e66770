"""Everything one emulator instance knows: apps, users' organisations, connections, tokens, limits, faults, stats."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.xero_emulator.clock import Clock
from local.xero_emulator.config import EmulatorConfig, RegisteredApp
from local.xero_emulator.dates import identity_date
from local.xero_emulator.faults import FaultBook
from local.xero_emulator.limits import RateLimiter
from local.xero_emulator.store import Organisation

ACCESS_TOKEN_SECONDS = 1800  # "What is the expiration for an access token? 30 minutes." (faq/oauth2)
REFRESH_TOKEN_SECONDS = 60 * 86_400  # unused refresh tokens expire after 60 days
GRACE_SECONDS = 1800  # the previous refresh token keeps working for 30 minutes after rotation
AUTH_CODE_SECONDS = 300  # Xero does not publish it; 5 minutes is the usual OAuth2 figure
DEFAULT_USER = "demo-user"

_PROCESS_KEY: rsa.RSAPrivateKey | None = None
_PROCESS_KEY_LOCK = threading.Lock()


def signing_key() -> rsa.RSAPrivateKey:
    """One RSA key per process: generating one per emulator would slow the tests for nothing."""
    global _PROCESS_KEY
    with _PROCESS_KEY_LOCK:
        if _PROCESS_KEY is None:
            _PROCESS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _PROCESS_KEY


@dataclass
class Connection:
    id: str
    tenant_id: str
    user_id: str
    client_id: str
    auth_event_id: str
    created: float
    updated: float

    def to_json(self, org: Organisation | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "authEventId": self.auth_event_id,
            "tenantId": self.tenant_id,
            "tenantType": "ORGANISATION",
            "tenantName": org.name if org else "",
            "createdDateUtc": identity_date(self.created),
            "updatedDateUtc": identity_date(self.updated),
        }


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    user_id: str
    auth_event_id: str
    code_challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str  # all the refresh tokens of one consent share it; revocation ends them together
    client_id: str
    user_id: str
    scopes: list[str]
    auth_event_id: str
    issued_at: float
    rotated_at: float | None = None


@dataclass
class AccessGrant:
    """What an access token (by jti) carries; kept server-side so revocation takes effect at once."""

    client_id: str
    user_id: str
    scopes: list[str]
    grant_id: str
    expires_at: float


@dataclass
class AuthRequest:
    """A validated /authorize request waiting for the consent form."""

    id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    code_challenge: str | None
    user_id: str


@dataclass
class PendingConsent:
    tenant_ids: list[str] | None
    deny: bool
    user_id: str | None


TIMELINE_LENGTH = 100_000  # calls kept per tenant (a large organisation's initial import is ~1,300)


@dataclass
class TenantStats:
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rate_limited: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: int = 0
    # (arrived, answered, status) of each call on the emulator clock, the latest TIMELINE_LENGTH of them: how a
    # client spread its calls over the rate-limit windows (the benchmark projects scaled runs onto real minutes).
    timeline: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=TIMELINE_LENGTH))

    def to_json(self, timeline: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "calls": dict(self.calls),
            "totalCalls": sum(self.calls.values()),
            "statuses": dict(self.statuses),
            "rateLimited": dict(self.rate_limited),
            "total429": sum(self.rate_limited.values()),
            "maxInFlight": self.max_in_flight,
        }
        if timeline:
            out["timeline"] = [[round(a, 4), round(b, 4), status] for a, b, status in self.timeline]
        return out


class ListHook(Protocol):
    """A test's seam into Xero answering a list: something that happens in Xero while it reads (a rename, a delete)."""

    def before(self, resource: str) -> None: ...

    def after(self, resource: str) -> None: ...


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.list_hook: ListHook | None = None
        self.lock = threading.RLock()
        self.clock = Clock()
        self.limiter = RateLimiter(config.rate_limits, self.clock)
        self.faults = FaultBook()
        self.key = signing_key()
        public_numbers = self.key.public_key().public_numbers()
        self.key_id = hashlib.sha256(str(public_numbers.n).encode()).hexdigest()[:16]
        self.apps: dict[str, RegisteredApp] = {}
        for app in config.apps:
            self.apps[app.client_id] = app
        self.issuer = "http://127.0.0.1"
        self._reset_data()

    def _reset_data(self) -> None:
        self.orgs: dict[str, Organisation] = {}
        self.connections: dict[str, Connection] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access: dict[str, AccessGrant] = {}
        self.revoked_grants: set[str] = set()
        self.public_refresh_tokens: set[str] = set()  # issued to PKCE clients that hold no secret
        self.auth_requests: dict[str, AuthRequest] = {}
        self.pending_consents: list[PendingConsent] = []
        self.stats: dict[str, TenantStats] = defaultdict(TenantStats)
        self.app_calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        """Forget organisations, connections, tokens, faults, stats and clock offset; keep the registered apps."""
        with self.lock:
            self._reset_data()
        self.faults.clear()
        self.limiter.reset()
        self.clock.reset()

    # --- apps and orgs ----------------------------------------------------------------------------------------------
    def register_app(self, app: RegisteredApp) -> None:
        with self.lock:
            self.apps[app.client_id] = app

    def orgs_of(self, user_id: str) -> list[Organisation]:
        with self.lock:
            return [org for org in self.orgs.values() if user_id in org.user_ids]

    # --- connections --------------------------------------------------------------------------------------------------
    def connect(self, user_id: str, client_id: str, tenant_ids: list[str], auth_event_id: str) -> None:
        """Consent: connect each chosen org. Re-consenting keeps the connection id, with a new authEventId."""
        now = self.clock.now()
        with self.lock:
            for tenant_id in tenant_ids:
                existing = self.connection_for(user_id, client_id, tenant_id)
                if existing is not None:
                    existing.auth_event_id = auth_event_id
                    existing.updated = now
                else:
                    cid = str(uuid.uuid4())
                    self.connections[cid] = Connection(cid, tenant_id, user_id, client_id, auth_event_id, now, now)

    def connection_for(self, user_id: str, client_id: str, tenant_id: str) -> Connection | None:
        with self.lock:
            for conn in self.connections.values():
                if (
                    conn.user_id == user_id
                    and conn.client_id == client_id
                    and conn.tenant_id.lower() == (tenant_id or "").lower()
                ):
                    return conn
        return None

    def connections_of(self, user_id: str, client_id: str) -> list[Connection]:
        with self.lock:
            return [c for c in self.connections.values() if c.user_id == user_id and c.client_id == client_id]

    # --- tokens -------------------------------------------------------------------------------------------------------
    def new_code(self, request: AuthRequest, auth_event_id: str) -> str:
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = AuthCode(
                code,
                request.client_id,
                request.redirect_uri,
                request.scopes,
                request.user_id,
                auth_event_id,
                request.code_challenge,
                self.clock.now() + AUTH_CODE_SECONDS,
            )
        return code

    def issue_tokens(
        self, client_id: str, user_id: str, scopes: list[str], grant_id: str, auth_event_id: str
    ) -> dict[str, Any]:
        """A token set as Xero returns it."""
        now = self.clock.now()
        jti = secrets.token_hex(16)
        session = hashlib.sha256(f"{grant_id}:session".encode()).hexdigest()[:32]
        xero_userid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-emulator-user:{user_id}"))
        claims = {
            "nbf": int(now),
            "exp": int(now) + ACCESS_TOKEN_SECONDS,
            "iss": self.issuer,
            "aud": f"{self.issuer}/resources",
            "client_id": client_id,
            "sub": hashlib.sha256(user_id.encode()).hexdigest()[:32],
            "auth_time": int(now),
            "xero_userid": xero_userid,
            "global_session_id": session,
            "sid": session,
            "jti": jti,
            "authentication_event_id": auth_event_id,
            "scope": scopes,
            "amr": ["pwd"],
        }
        access_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.key_id})
        with self.lock:
            self.access[jti] = AccessGrant(client_id, user_id, scopes, grant_id, now + ACCESS_TOKEN_SECONDS)
        token_set: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "token_type": "Bearer",
            "scope": " ".join(scopes),
        }
        if "openid" in scopes:
            digest = hashlib.sha256(access_token.encode()).digest()
            at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
            id_claims = {
                "nbf": int(now),
                "exp": int(now) + 300,
                "iss": self.issuer,
                "aud": client_id,
                "iat": int(now),
                "at_hash": at_hash,
                "sid": session,
                "sub": claims["sub"],
                "auth_time": int(now),
                "xero_userid": xero_userid,
                "global_session_id": session,
                "amr": ["pwd"],
            }
            if "email" in scopes or "profile" in scopes:
                id_claims.update(
                    {
                        "preferred_username": f"{user_id}@example.com",
                        "email": f"{user_id}@example.com",
                        "given_name": user_id.split("-")[0].title(),
                        "family_name": "User",
                    }
                )
            token_set["id_token"] = jwt.encode(id_claims, self.key, algorithm="RS256", headers={"kid": self.key_id})
        if "offline_access" in scopes:
            refresh = RefreshToken(secrets.token_urlsafe(32), grant_id, client_id, user_id, scopes, auth_event_id, now)
            with self.lock:
                self.refresh_tokens[refresh.token] = refresh
            token_set["refresh_token"] = refresh.token
        return token_set

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()

        def b64(value: int) -> str:
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.key_id,
            "n": b64(numbers.n),
            "e": b64(numbers.e),
        }

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def record_call(
        self,
        tenant_id: str | None,
        endpoint: str,
        status: int,
        problem: str | None = None,
        in_flight: int = 0,
        arrived: float | None = None,
    ) -> None:
        answered = self.clock.now()
        with self.lock:
            stats = self.stats[tenant_id or "(none)"]
            stats.timeline.append((answered if arrived is None else arrived, answered, status))
            stats.calls[endpoint] += 1
            stats.statuses[str(status)] += 1
            if problem:
                stats.rate_limited[problem] += 1
            stats.max_in_flight = max(stats.max_in_flight, in_flight)
