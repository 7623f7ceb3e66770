"""Integration tier: the real code against moto in-process, with every resource created from template.yaml."""

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlparse

import boto3
import pytest
import requests
from moto import mock_aws

from local.environment import apply_function_environment
from local.provision import LOCAL_XERO_APP, provision
from local.template import PhysicalResource
from local.xero_emulator import EmulatorConfig, XeroEmulator
from local.xero_emulator.config import RegisteredApp
from tests.conftest import TEMPLATE
from xero_sync.config import get_settings


@dataclass
class Aws:
    physical: dict[str, PhysicalResource]
    session: boto3.Session

    def queue_url(self, logical_id: str) -> str:
        return self.physical[logical_id].ref

    def receive_all(self, logical_id: str) -> list[dict]:
        sqs = self.session.client("sqs")
        messages: list[dict] = []
        while batch := sqs.receive_message(
            QueueUrl=self.queue_url(logical_id), MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        return messages


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        session = boto3.Session(region_name=TEMPLATE.region)
        physical = provision(TEMPLATE, session)
        apply_function_environment(TEMPLATE.functions(physical)["SyncClientFunction"].environment)
        yield Aws(physical=physical, session=session)


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

    def create_org(self, name: str, user_id: str = "demo-user") -> str:
        return self.admin("POST", "/orgs", json={"name": name, "seed": name, "size": "tiny", "userId": user_id}).json()[
            "tenantId"
        ]

    def consent(self, authorize_url: str, tenant_ids: list[str], user_id: str = "demo-user") -> dict[str, str]:
        """Answers the next authorisation as a user would; returns the callback's query parameters."""
        self.admin("POST", "/consent", json={"tenantIds": tenant_ids, "deny": False, "userId": user_id})
        response = self.session.get(authorize_url, allow_redirects=False, timeout=30)
        assert response.status_code == 302, response.text
        return dict(parse_qsl(urlparse(response.headers["Location"]).query))

    def token_calls(self) -> int:
        stats = self.admin("GET", "/stats").json()["tenants"].get("(none)", {})
        return int(stats.get("calls", {}).get("POST /connect/token", 0))


@pytest.fixture
def xero(aws: Aws) -> Iterator[Xero]:
    settings = get_settings()
    app = RegisteredApp(LOCAL_XERO_APP["client_id"], LOCAL_XERO_APP["client_secret"], [str(settings.xero_redirect_uri)])
    with XeroEmulator(EmulatorConfig(apps=[app])) as emulator:
        urls = {name: emulator.base_url for name in ("XERO_LOGIN_URL", "XERO_IDENTITY_URL", "XERO_API_URL")}
        apply_function_environment({**TEMPLATE.functions(aws.physical)["SyncClientFunction"].environment, **urls})
        yield Xero(emulator, requests.Session())
