"""The Xero emulator as the test tiers use it: an app registered, the functions pointed at it. (No secret it issues
may reach a log line: tests/conftest.py guards every test of the session.)"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlparse

import requests

from local.stack.function_environment import apply_function_environment
from local.stack.provision import LOCAL_XERO_APP
from local.xero_emulator import EmulatorConfig, XeroEmulator
from local.xero_emulator.config import RegisteredApp
from xero_sync.config import get_settings


@dataclass
class Xero:
    """The Xero emulator, with this app registered and the functions pointed at it."""

    emulator: XeroEmulator
    session: requests.Session

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, f"{self.base_url}/_emulator{path}", timeout=60, **kwargs)
        assert response.status_code < 300, response.text
        return response

    def create_org(self, name: str, user_id: str = "demo-user", size: str = "tiny", seed: str | None = None) -> str:
        """An organisation whose records are built from `seed` (by default its name)."""
        body = {"name": name, "seed": seed or name, "size": size, "userId": user_id}
        return str(self.admin("POST", "/orgs", json=body).json()["tenantId"])

    def consent(self, authorize_url: str, tenant_ids: list[str], user_id: str = "demo-user") -> dict[str, str]:
        """Answers the next authorisation as a user would; returns the callback's query parameters."""
        self.admin("POST", "/consent", json={"tenantIds": tenant_ids, "deny": False, "userId": user_id})
        response = self.session.get(authorize_url, allow_redirects=False, timeout=30)
        assert response.status_code == 302, response.text
        return dict(parse_qsl(urlparse(response.headers["Location"]).query))

    def token_calls(self) -> int:
        stats = self.admin("GET", "/stats").json()["tenants"].get("(none)", {})
        return int(stats.get("calls", {}).get("POST /connect/token", 0))


@contextmanager
def running_xero(function_environment: Mapping[str, str], aws_endpoints: Mapping[str, str]) -> Iterator[Xero]:
    """An emulator with this app registered, the functions pointed at it."""
    settings = get_settings()
    app = RegisteredApp(LOCAL_XERO_APP["client_id"], LOCAL_XERO_APP["client_secret"], [str(settings.xero_redirect_uri)])
    with XeroEmulator(EmulatorConfig(apps=[app])) as emulator:
        urls = {name: emulator.base_url for name in ("XERO_LOGIN_URL", "XERO_IDENTITY_URL", "XERO_API_URL")}
        apply_function_environment({**function_environment, **urls}, aws_endpoints)
        yield Xero(emulator, requests.Session())
