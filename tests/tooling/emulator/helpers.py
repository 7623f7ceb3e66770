"""Test helpers: drive the emulator's OAuth flow headlessly and call its APIs."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
REDIRECT_URI = "http://localhost:8080/callback"
ALL_SCOPES = (
    "openid profile email offline_access accounting.settings.read accounting.contacts.read "
    "accounting.transactions.read accounting.journals.read"
)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Xero:
    """A thin client for one emulator."""

    base_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}/_emulator{path}", timeout=120, **kwargs)

    def create_org(self, name: str = "Acme Ltd", seed: Any = 1, size: str = "tiny", **extra: Any) -> dict[str, Any]:
        response = self.admin("POST", "/orgs", json={"name": name, "seed": seed, "size": size, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def authorize(
        self,
        scope: str = ALL_SCOPES,
        state: str = "xyz",
        challenge: str | None = None,
        client_id: str = CLIENT_ID,
        redirect_uri: str = REDIRECT_URI,
        **extra: str,
    ) -> requests.Response:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            **extra,
        }
        if challenge:
            params.update({"code_challenge": challenge, "code_challenge_method": "S256"})
        return self.session.get(
            f"{self.base_url}/identity/connect/authorize", params=params, allow_redirects=False, timeout=30
        )

    def consent_code(
        self, tenant_ids: list[str] | None = None, user_id: str | None = None, **authorize_args: Any
    ) -> str:
        body: dict[str, Any] = {"deny": False}
        if tenant_ids is not None:
            body["tenantIds"] = tenant_ids
        if user_id is not None:
            body["userId"] = user_id
        assert self.admin("POST", "/consent", json=body).status_code == 201
        response = self.authorize(**authorize_args)
        assert response.status_code == 302, response.text
        query = parse_qs(urlparse(response.headers["Location"]).query)
        assert "code" in query, response.headers["Location"]
        return query["code"][0]

    def token(self, data: dict[str, str], basic: bool = True) -> requests.Response:
        auth = (CLIENT_ID, CLIENT_SECRET) if basic else None
        return self.session.post(f"{self.base_url}/connect/token", data=data, auth=auth, timeout=30)

    def login(
        self, tenant_ids: list[str] | None = None, scope: str = ALL_SCOPES, user_id: str | None = None
    ) -> dict[str, Any]:
        code = self.consent_code(tenant_ids, user_id=user_id, scope=scope)
        response = self.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
        assert response.status_code == 200, response.text
        return response.json()

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def get(
        self,
        path: str,
        token: str,
        tenant_id: str | None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
        **params: Any,
    ) -> requests.Response:
        all_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if tenant_id is not None:
            all_headers["xero-tenant-id"] = tenant_id
        all_headers.update(headers or {})
        return self.session.get(
            f"{self.base_url}/api.xro/2.0/{path}", headers=all_headers, params=params, timeout=timeout
        )

    def records(self, tenant_id: str, resource: str) -> list[dict[str, Any]]:
        response = self.admin("GET", f"/orgs/{tenant_id}/records/{resource}")
        assert response.status_code == 200, response.text
        return response.json()["records"]

    def connections(self, token: str, **params: str) -> requests.Response:
        return self.session.get(
            f"{self.base_url}/connections", headers={"Authorization": f"Bearer {token}"}, params=params, timeout=30
        )
