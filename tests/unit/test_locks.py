"""The dependency locks: every pin carries the sha256 of its files (uv pip sync runs with --require-hashes, and pip
checks them when sam build installs the layer), and `make audit` tells a known vulnerability from a service it
cannot reach."""

import re
from pathlib import Path

import pytest

from scripts.audit import classify, locks

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)==(\S+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


def unhashed_pins(lock_text: str) -> list[str]:
    """The `name==version` requirements of a lock with no `--hash=sha256:` among their continuation lines."""
    requirements = re.split(r"(?<!\\)\n", lock_text)  # a requirement ends at a line not continued by a backslash
    return [pin.group(0) for req in requirements if (pin := PIN.match(req)) and not HASH.search(req)]


def test_the_locks_are_the_ones_the_makefile_installs_and_audits() -> None:
    names = {str(lock.relative_to(ROOT)) for lock in locks()}
    assert {
        "layers/common/requirements.txt",
        "requirements/dev.txt",
        "requirements/sam.txt",
        "requirements/tap.txt",
        "requirements/audit.txt",
        "requirements/bootstrap.txt",
    } <= names


@pytest.mark.parametrize("lock", locks(), ids=lambda lock: str(lock.relative_to(ROOT)))
def test_every_pin_of_every_lock_carries_a_hash(lock: Path) -> None:
    text = lock.read_text()
    assert any(PIN.match(line) for line in text.splitlines()), f"{lock.name}: no pin at all"
    assert unhashed_pins(text) == [], f"{lock.name}: pins without --hash (make lock regenerates them with hashes)"


def test_a_pin_whose_hashes_were_removed_is_found() -> None:
    # Given a lock in which one pin lost its hashes
    lock = (
        "certifi==2026.10.19.post1 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via requests\n"
        "idna==3.20\n    # via requests\n"
        "urllib3==2.8.0 \\\n    --hash=sha256:" + "b" * 64 + " \\\n    --hash=sha256:" + "c" * 64 + "\n"
    )
    # Then that pin, and only it, is named
    assert unhashed_pins(lock) == ["idna==3.20"]


def test_audit_tells_a_finding_from_an_unreachable_service_and_a_pin_it_could_not_audit() -> None:
    assert classify(0, "No known vulnerabilities found\n") == "clean"
    assert classify(1, "Found 1 known vulnerability in 1 package\n") == "vulnerable"
    # No DNS or route to the service, or the service failing, is not a finding: make audit says it skipped
    assert classify(1, "requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'\n") == "unreachable"
    assert classify(1, "pip_audit._service.interface.ServiceError\n") == "unreachable"
    # A pin the service does not know (pip-audit --strict) fails the audit rather than passing unaudited
    skipped = "ERROR:pip_audit._cli:idna: Dependency not found on PyPI and could not be audited: idna (3.20)\n"
    assert classify(1, skipped) == "error"
