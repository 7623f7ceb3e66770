"""The Xero emulator as the test tiers use it: an app registered, the functions pointed at it, and a guard that no
secret the test handled reaches a log line."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlparse

import pytest
import requests

from local.environment import apply_function_environment
from local.provision import LOCAL_XERO_APP
from local.xero_emulator import EmulatorConfig, XeroEmulator
from local.xero_emulator.config import RegisteredApp
from tests.conftest import LOG_LINES
from xero_sync.config import get_settings


@dataclass
class Xero:
    """The Xero emulator, with this app registered and the functions pointed at it."""

    emulator: XeroEmulator
    session: requests.Session
    secrets: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, f"{self.base_url}/_emulator{path}", timeout=60, **kwargs)
        assert response.status_code < 300, response.text
        return response

    def create_org(self, name: str, user_id: str = "demo-user", size: str = "tiny") -> str:
        body = {"name": name, "seed": name, "size": size, "userId": user_id}
        return str(self.admin("POST", "/orgs", json=body).json()["tenantId"])

    def consent(self, authorize_url: str, tenant_ids: list[str], user_id: str = "demo-user") -> dict[str, str]:
        """Answers the next authorisation as a user would; returns the callback's query parameters."""
        self.admin("POST", "/consent", json={"tenantIds": tenant_ids, "deny": False, "userId": user_id})
        response = self.session.get(authorize_url, allow_redirects=False, timeout=30)
        assert response.status_code == 302, response.text
        params = dict(parse_qsl(urlparse(response.headers["Location"]).query))
        self.secrets.append(params.get("code", ""))
        return params

    def handled_secrets(self) -> set[str]:
        """Every token, code, verifier and client secret this test's code handled (to look for in the logs)."""
        return {value for value in self.secrets if value}

    def token_calls(self) -> int:
        stats = self.admin("GET", "/stats").json()["tenants"].get("(none)", {})
        return int(stats.get("calls", {}).get("POST /connect/token", 0))


@contextmanager
def running_xero(
    function_environment: Mapping[str, str], aws_endpoints: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Xero]:
    """An emulator with this app registered, the functions pointed at it. On exit it fails the test if any token,
    code, PKCE verifier or client secret the test handled shows in a log line."""
    settings = get_settings()
    app = RegisteredApp(LOCAL_XERO_APP["client_id"], LOCAL_XERO_APP["client_secret"], [str(settings.xero_redirect_uri)])
    with XeroEmulator(EmulatorConfig(apps=[app])) as emulator:
        urls = {name: emulator.base_url for name in ("XERO_LOGIN_URL", "XERO_IDENTITY_URL", "XERO_API_URL")}
        apply_function_environment({**function_environment, **urls}, aws_endpoints)
        xero = Xero(emulator, requests.Session(), secrets=[LOCAL_XERO_APP["client_secret"]])
        _record_handled_secrets(monkeypatch, xero.secrets)
        first_line = len(LOG_LINES.lines)
        yield xero
    leaked = [line for line in LOG_LINES.lines[first_line:] if any(secret in line for secret in xero.handled_secrets())]
    assert not leaked, f"{len(leaked)} log line(s) carry a token, code, verifier or client secret"


def _record_handled_secrets(monkeypatch: pytest.MonkeyPatch, secrets: list[str]) -> None:
    from xero_sync import linking, xero_identity

    issued = xero_identity.TokenSet.from_response.__func__  # type: ignore[attr-defined]

    def recording_from_response(cls, token, now=None):
        token_set = issued(cls, token, now)
        secrets.extend([token_set.access_token.get_secret_value(), token_set.refresh_token.get_secret_value()])
        return token_set

    def recording_verifier() -> str:
        verifier = xero_identity.new_code_verifier()
        secrets.append(verifier)
        return verifier

    monkeypatch.setattr(xero_identity.TokenSet, "from_response", classmethod(recording_from_response))
    monkeypatch.setattr(linking, "new_code_verifier", recording_verifier)
