"""One local stack (in-process front door, pollers and functions; DynamoDB Local and moto as child processes) shared
by every e2e test of a run. It is stopped, and the process environment restored, as soon as the next test to run is
not an e2e test, so the other tiers never see its endpoints (`make test` mixes tiers on one xdist worker)."""

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack
from tests.e2e.helpers import Api

E2E_DIR = Path(__file__).resolve().parent
VISIBILITY_TIMEOUT = 2  # seconds; the template's 5400 s would make redelivery untestable
MAX_RECEIVE_COUNT = 2  # deliveries before the dead-letter queue (the template's default is 5)

# Without the emulator, Xero is a closed port: never a developer's running emulator, never the real Xero.
UNREACHABLE_XERO = {name: "http://127.0.0.1:9" for name in ("XeroLoginUrl", "XeroIdentityUrl", "XeroApiUrl")}

_holder: dict[str, LocalStack] = {}


def _running_stack(state_dir: Path) -> LocalStack:
    if "stack" not in _holder:
        _holder["stack"] = LocalStack(
            api_port=0,
            emulator=False,
            visibility_timeout=VISIBILITY_TIMEOUT,
            parameters={"SyncMaxReceiveCount": str(MAX_RECEIVE_COUNT), **UNREACHABLE_XERO},
            run_schedules=False,
            state_dir=state_dir,
        ).start()
    return _holder["stack"]


def stop_stack() -> None:
    stack = _holder.pop("stack", None)
    if stack is not None:
        stack.stop()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or E2E_DIR not in Path(nextitem.path).resolve().parents:
        stop_stack()


def pytest_sessionfinish() -> None:
    stop_stack()


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> LocalStack:
    if "stack" in _holder:
        return _holder["stack"]
    return _running_stack(tmp_path_factory.mktemp("local-stack"))


@pytest.fixture
def practice() -> str:
    """A practice of this test's own: tests never see each other's data."""
    return f"practice-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def api(stack: LocalStack) -> Iterator[Api]:
    client = Api(stack)
    yield client
    client.session.close()


@pytest.fixture
def seed_client(stack: LocalStack) -> Callable[..., Any]:
    """Writes a client straight into DynamoDB Local with the shared package's model (as linking will)."""
    from xero_sync.ids import client_id_for
    from xero_sync.models import LINKED_PARTITION, Client, LinkState

    def seed(practice_id: str, name: str, linked: bool = True, tenant_id: str | None = None) -> Client:
        tenant = tenant_id or str(uuid.uuid4())
        now = datetime.now(UTC)
        client = Client(
            practice_id=practice_id,
            client_id=client_id_for(practice_id, tenant),
            name=name,
            tenant_id=tenant,
            link_state=(LinkState.LINKED if linked else LinkState.UNLINKED).value,
            linked_partition=LINKED_PARTITION if linked else None,
            created_at=now,
            updated_at=now,
        )
        client.save()
        return client

    return seed
