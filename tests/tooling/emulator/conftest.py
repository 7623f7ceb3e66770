"""Fixtures: one emulator per test (cheap: a thread and a port), with the test app registered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.xero_emulator import EmulatorConfig, XeroEmulator
from local.xero_emulator.config import RegisteredApp
from tests.tooling.emulator.helpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Xero


@pytest.fixture
def emulator() -> Iterator[XeroEmulator]:
    config = EmulatorConfig(apps=[RegisteredApp(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], "Test App")])
    with XeroEmulator(config) as running:
        yield running


@pytest.fixture
def xero(emulator: XeroEmulator) -> Xero:
    return Xero(emulator.base_url)


@pytest.fixture
def connected(xero: Xero) -> tuple[Xero, str, dict]:
    """A tiny organisation, connected; returns (client, tenant id, token set)."""
    org = xero.create_org("Connected Co", seed=7, size="tiny")
    tokens = xero.login([org["tenantId"]])
    return xero, org["tenantId"], tokens
