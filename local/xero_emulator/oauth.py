"""Xero's OAuth2 / OpenID Connect endpoints and the Identity API (/connections)."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jwt
from werkzeug.wrappers import Request, Response

from local.xero_emulator.responses import json_response, not_found, oauth_error, rate_limited, unauthorized
from local.xero_emulator.state import (
    DEFAULT_USER,
    GRACE_SECONDS,
    REFRESH_TOKEN_SECONDS,
    AccessGrant,
    AuthRequest,
    EmulatorState,
)

_OPEN_SCOPES = {"openid", "profile", "email", "offline_access", "paymentservices", "bankfeeds", "marketplace.billing"}
_SCOPE_PREFIXES = ("accounting.", "payroll.", "assets", "projects", "files", "finance.", "app.")


def _valid_scope(scope: str) -> bool:
    return scope in _OPEN_SCOPES or scope.startswith(_SCOPE_PREFIXES)


def _needs_tenant(scopes: list[str]) -> bool:
    return any(s.startswith(_SCOPE_PREFIXES) for s in scopes)


def _with_query(url: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _redirect(url: str) -> Response:
    return Response("", status=302, headers={"Location": url})


def _error_page(status: int, error: str, description: str) -> Response:
    """Xero shows its own error page (and does not redirect) when the client or redirect_uri cannot be trusted."""
    body = f"""<!doctype html><html><head><title>Xero | Error</title></head><body>
<h1 id="error-title">Sorry, something went wrong</h1>
<p id="error-code">{html.escape(error)}</p><p id="error-description">{html.escape(description)}</p>
</body></html>"""
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class OAuthEndpoints:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # --- /identity/connect/authorize -----------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response:
        if request.method == "POST":
            return self._consent_answer(request)
        args = request.args
        client_id = args.get("client_id", "")
        app = self.state.apps.get(client_id)
        if app is None:
            return _error_page(400, "unauthorized_client", "Unknown client or client not enabled")
        redirect_uri = args.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            return _error_page(400, "invalid_request", "Invalid redirect_uri")
        state_param = args.get("state")
        if args.get("response_type") != "code":
            return _redirect(_with_query(redirect_uri, {"error": "unsupported_response_type", "state": state_param}))
        scopes = args.get("scope", "").split()
        if not scopes or not all(_valid_scope(s) for s in scopes):
            return _redirect(_with_query(redirect_uri, {"error": "invalid_scope", "state": state_param}))
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method")
        if challenge is not None and method != "S256":
            return _redirect(
                _with_query(
                    redirect_uri,
                    {
                        "error": "invalid_request",
                        "error_description": "code_challenge_method must be S256",
                        "state": state_param,
                    },
                )
            )
        if app.client_secret is None and not challenge:
            return _redirect(
                _with_query(
                    redirect_uri,
                    {
                        "error": "invalid_request",
                        "error_description": "code_challenge is required",
                        "state": state_param,
                    },
                )
            )
        user_id = args.get("emulator_user") or DEFAULT_USER
        auth_request = AuthRequest(
            secrets.token_urlsafe(16), client_id, redirect_uri, scopes, state_param, challenge, user_id
        )
        with self.state.lock:
            pending = self.state.pending_consents.pop(0) if self.state.pending_consents else None
        if pending is not None:
            # Headless tests: the next authorize request is answered at once with the scripted choice.
            auth_request.user_id = pending.user_id or user_id
            if pending.deny:
                return self._deny(auth_request)
            tenant_ids = pending.tenant_ids
            if tenant_ids is None:
                tenant_ids = [o.tenant_id for o in self.state.orgs_of(auth_request.user_id)]
            return self._allow(auth_request, tenant_ids)
        with self.state.lock:
            self.state.auth_requests[auth_request.id] = auth_request
        return self._consent_page(auth_request, app.name)

    def _consent_page(self, auth_request: AuthRequest, app_name: str, message: str = "") -> Response:
        orgs = self.state.orgs_of(auth_request.user_id)
        needs_tenant = _needs_tenant(auth_request.scopes)
        rows = "\n".join(
            f'<li><label><input type="checkbox" name="tenantId" value="{html.escape(o.tenant_id)}" '
            f'id="tenant-{html.escape(o.tenant_id)}"> <span class="org-name">{html.escape(o.name)}</span></label></li>'
            for o in orgs
        )
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in auth_request.scopes)
        org_block = (
            f'<fieldset id="organisations"><legend>Select organisations to connect</legend><ul>{rows}</ul></fieldset>'
            if needs_tenant
            else ""
        )
        if needs_tenant and not orgs:
            org_block = '<p id="no-organisations">You have no organisations to connect.</p>'
        note = f'<p id="message" role="alert">{html.escape(message)}</p>' if message else ""
        body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Xero | Authorise {html.escape(app_name)}</title></head>
<body>
<h1 id="consent-title">{html.escape(app_name)} wants access to your Xero data</h1>
<p id="signed-in-user">Signed in as <strong>{html.escape(auth_request.user_id)}</strong></p>
{note}
<form method="post" action="/identity/connect/authorize" id="consent-form">
<input type="hidden" name="request_id" value="{html.escape(auth_request.id)}">
<p>Permissions requested:</p><ul id="scopes">{scopes}</ul>
{org_block}
<button type="submit" name="action" value="allow" id="allow">Allow access</button>
<button type="submit" name="action" value="deny" id="deny">Cancel</button>
</form>
</body></html>"""
        return Response(body, status=200, content_type="text/html; charset=utf-8")

    def _consent_answer(self, request: Request) -> Response:
        with self.state.lock:
            auth_request = self.state.auth_requests.get(request.form.get("request_id", ""))
        if auth_request is None:
            return _error_page(400, "invalid_request", "This authorisation request has expired; start again")
        if request.form.get("action") != "allow":
            self._forget(auth_request)
            return self._deny(auth_request)
        owned = {o.tenant_id for o in self.state.orgs_of(auth_request.user_id)}
        chosen = [t for t in request.form.getlist("tenantId") if t in owned]
        if _needs_tenant(auth_request.scopes) and owned and not chosen:
            app = self.state.apps[auth_request.client_id]
            return self._consent_page(auth_request, app.name, "Select at least one organisation")
        self._forget(auth_request)
        return self._allow(auth_request, chosen)

    def _forget(self, auth_request: AuthRequest) -> None:
        with self.state.lock:
            self.state.auth_requests.pop(auth_request.id, None)

    def _deny(self, auth_request: AuthRequest) -> Response:
        return _redirect(
            _with_query(auth_request.redirect_uri, {"error": "access_denied", "state": auth_request.state})
        )

    def _allow(self, auth_request: AuthRequest, tenant_ids: list[str]) -> Response:
        auth_event_id = str(uuid.uuid4())
        if _needs_tenant(auth_request.scopes):
            self.state.connect(auth_request.user_id, auth_request.client_id, tenant_ids, auth_event_id)
        code = self.state.new_code(auth_request, auth_event_id)
        return _redirect(
            _with_query(
                auth_request.redirect_uri,
                {
                    "code": code,
                    "scope": " ".join(auth_request.scopes),
                    "state": auth_request.state,
                    "session_state": secrets.token_urlsafe(24),
                },
            )
        )

    # --- /connect/token ------------------------------------------------------------------------------------------
    def _client(self, request: Request) -> tuple[str, str | None]:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            return auth.username or "", auth.password
        return request.form.get("client_id", ""), request.form.get("client_secret")

    def token(self, request: Request) -> Response:
        if request.method != "POST":
            return oauth_error("invalid_request", 405)
        client_id, secret = self._client(request)
        app = self.state.apps.get(client_id)
        if app is None or (secret is not None and secret != app.client_secret):
            return oauth_error("invalid_client")
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(request, client_id, secret)
        if grant_type == "refresh_token":
            return self._refresh(request, client_id, secret)
        if grant_type == "client_credentials":
            return oauth_error("unauthorized_client")  # custom connections are not emulated
        return oauth_error("unsupported_grant_type")

    def _exchange_code(self, request: Request, client_id: str, secret: str | None) -> Response:
        now = self.state.clock.now()
        with self.state.lock:
            code = self.state.codes.get(request.form.get("code", ""))
            if code is None or code.client_id != client_id:
                return oauth_error("invalid_grant")
            # A code is good for one attempt, right or wrong.
            already_used = code.used
            code.used = True
        if already_used or now > code.expires_at or request.form.get("redirect_uri") != code.redirect_uri:
            return oauth_error("invalid_grant")
        if code.code_challenge is not None:
            verifier = request.form.get("code_verifier")
            if not verifier or s256(verifier) != code.code_challenge:
                return oauth_error("invalid_grant")
        elif secret is None:
            return oauth_error("invalid_client")
        token_set = self.state.issue_tokens(client_id, code.user_id, code.scopes, str(uuid.uuid4()), code.auth_event_id)
        self._mark_public(token_set, code.code_challenge is not None and secret is None)
        return json_response(token_set, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def spoil_token(self, token_set: dict[str, Any], kind: str) -> dict[str, Any]:
        """A token answer unlike Xero's (faults.TOKEN_KINDS): an opaque access token, or a JWT, still good for the
        API, without the consent's authentication_event_id (so its connections cannot be told from the others)."""
        if kind == "opaque-token":
            return {**token_set, "access_token": secrets.token_urlsafe(48)}
        claims = jwt.decode(token_set["access_token"], options={"verify_signature": False})
        claims.pop("authentication_event_id", None)
        headers = {"kid": self.state.key_id}
        return {**token_set, "access_token": jwt.encode(claims, self.state.key, algorithm="RS256", headers=headers)}

    def _mark_public(self, token_set: dict[str, Any], public: bool) -> None:
        if public and "refresh_token" in token_set:
            with self.state.lock:
                self.state.public_refresh_tokens.add(token_set["refresh_token"])

    def _refresh(self, request: Request, client_id: str, secret: str | None) -> Response:
        now = self.state.clock.now()
        presented = request.form.get("refresh_token", "")
        with self.state.lock:
            token = self.state.refresh_tokens.get(presented)
            if token is None or token.client_id != client_id or token.grant_id in self.state.revoked_grants:
                return oauth_error("invalid_grant")
            public = presented in self.state.public_refresh_tokens
            if secret is None and not public:
                return oauth_error("invalid_client")
            if now > token.issued_at + REFRESH_TOKEN_SECONDS:
                return oauth_error("invalid_grant")
            if token.rotated_at is not None and now > token.rotated_at + GRACE_SECONDS:
                return oauth_error("invalid_grant")
            # A `scope` sent with a refresh is ignored: the new set keeps the consented scopes. (xero-python sends
            # " ".join(scope), which spells a stored scope string out letter by letter, and works against Xero.)
            if token.rotated_at is None:
                token.rotated_at = now
        token_set = self.state.issue_tokens(client_id, token.user_id, token.scopes, token.grant_id, token.auth_event_id)
        self._mark_public(token_set, public)
        return json_response(token_set, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # --- /connect/revocation -------------------------------------------------------------------------------------
    def revoke(self, request: Request) -> Response:
        client_id, secret = self._client(request)
        app = self.state.apps.get(client_id)
        if app is None or (secret is not None and secret != app.client_secret):
            return oauth_error("invalid_client")
        presented = request.form.get("token", "")
        with self.state.lock:
            token = self.state.refresh_tokens.get(presented)
            if token is None or token.client_id != client_id:
                return Response("", status=200)  # RFC 7009: unknown tokens are not an error
            if secret is None and presented not in self.state.public_refresh_tokens:
                return oauth_error("invalid_client")
            # Revoking ends the whole grant and removes all the user's connections to this app.
            self.state.revoked_grants.add(token.grant_id)
            for jti, grant in list(self.state.access.items()):
                if grant.user_id == token.user_id and grant.client_id == client_id:
                    del self.state.access[jti]
            for conn in self.state.connections_of(token.user_id, client_id):
                del self.state.connections[conn.id]
        return Response("", status=200)

    # --- bearer tokens -------------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> tuple[AccessGrant | None, Response | None]:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return None, unauthorized()
        raw = header[7:].strip()
        try:
            claims = jwt.decode(
                raw,
                self.state.public_pem(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None, unauthorized()
        with self.state.lock:
            grant = self.state.access.get(str(claims.get("jti")))
            if grant is None or grant.grant_id in self.state.revoked_grants:
                return None, unauthorized()
        if self.state.clock.now() >= grant.expires_at:
            expired = datetime.fromtimestamp(grant.expires_at, tz=UTC).strftime("%m/%d/%Y %H:%M:%S")
            return None, unauthorized(f"TokenExpired: token expired at {expired}")
        return grant, None

    # --- /connections --------------------------------------------------------------------------------------------
    def connections(self, request: Request, connection_id: str | None) -> Response:
        grant, error = self.authenticate(request)
        if error is not None or grant is None:
            return error  # type: ignore[return-value]
        decision = self.state.limiter.acquire_app(grant.client_id)
        if not decision.allowed:
            return rate_limited(decision.problem or "appminute", decision.retry_after, decision.headers)
        headers = decision.headers
        if connection_id is None:
            if request.method != "GET":
                return Response("", status=405, headers=headers)
            auth_event = request.args.get("authEventId")
            with self.state.lock:
                items = [
                    c.to_json(self.state.orgs.get(c.tenant_id))
                    for c in self.state.connections_of(grant.user_id, grant.client_id)
                    if auth_event is None or c.auth_event_id == auth_event
                ]
            return json_response(items, headers=headers)
        if request.method != "DELETE":
            return Response("", status=405, headers=headers)
        with self.state.lock:
            conn = self.state.connections.get(connection_id)
            if conn is None or conn.user_id != grant.user_id or conn.client_id != grant.client_id:
                return not_found(headers)
            del self.state.connections[connection_id]
        return Response("", status=204, headers=headers)

    # --- discovery -----------------------------------------------------------------------------------------------
    def discovery(self, base_url: str) -> Response:
        return json_response(
            {
                "issuer": self.state.issuer,
                "authorization_endpoint": f"{base_url}/identity/connect/authorize",
                "token_endpoint": f"{base_url}/connect/token",
                "revocation_endpoint": f"{base_url}/connect/revocation",
                "jwks_uri": f"{base_url}/.well-known/openid-configuration/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public"],
            }
        )

    def jwks(self) -> Response:
        return json_response({"keys": [self.state.public_jwk()]})
