"""The secrets guard: every OAuth secret the test session handles (each token, code and refresh token the Xero
emulators of this process issue, every PKCE verifier, every app's client secret) is collected as it is made, and
no log line of the session may contain one. tests/conftest.py wires it for every test of every tier."""

import base64
import binascii
import json
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ahocorasick
import pytest

# Shorter values are not secrets of ours (and would match by chance).
MIN_SECRET_LENGTH = 16
_JWT = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")


class SecretWatch:
    """The secret values seen so far, searched for in many lines at once (Aho-Corasick: one pass per line)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._automaton: Any = None

    def add(self, *values: object) -> None:
        with self._lock:
            for value in values:
                if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
                    self._secrets.add(value)
                    self._automaton = None

    def __len__(self) -> int:
        return len(self._secrets)

    def _search(self) -> Any:
        with self._lock:
            if self._automaton is None:
                automaton = ahocorasick.Automaton()
                for secret in self._secrets:
                    automaton.add_word(secret, secret)
                if self._secrets:
                    automaton.make_automaton()
                self._automaton = automaton
            return self._automaton

    def leaks(self, lines: Iterable[str]) -> list[str]:
        """The lines that carry a secret (each shortened, the secret itself masked)."""
        automaton = self._search()
        if not len(automaton):
            return []
        found = []
        for line in lines:
            for _, secret in automaton.iter(line):
                found.append(line.replace(secret, "<SECRET>")[:300])
                break
        return found


def xero_access_tokens(text: str) -> list[str]:
    """JWTs in `text` that are Xero access tokens (what a subprocess's emulator issued, unknown to this process)."""
    tokens = []
    for candidate in _JWT.findall(text):
        payload = candidate.split(".")[1]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            continue
        if isinstance(claims, dict) and "authentication_event_id" in claims:
            tokens.append(candidate)
    return tokens


def subprocess_log_leaks(watch: SecretWatch, root: Path) -> list[str]:
    """Secrets in the log files the local stacks of this session wrote (DynamoDB Local, moto, `python -m local`)."""
    found = []
    for path in sorted(root.glob("**/logs/*.log")):
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        found += [f"{path.name}: {line}" for line in watch.leaks(lines)]
        found += [f"{path.name}: a Xero access token" for _ in xero_access_tokens(text)]
    return found


@contextmanager
def recording_secrets(watch: SecretWatch) -> Iterator[None]:
    """Every secret made in this process from now on is added to `watch`: by the emulators (tokens, codes, app
    secrets) and by the product (PKCE verifiers)."""
    from local.stack.provision import LOCAL_XERO_APP
    from local.xero_emulator.state import EmulatorState
    from xero_sync import linking, xero_identity

    watch.add(LOCAL_XERO_APP["client_secret"])
    init, issue_tokens, new_code = EmulatorState.__init__, EmulatorState.issue_tokens, EmulatorState.new_code
    register_app, new_verifier = EmulatorState.register_app, xero_identity.new_code_verifier

    def recording_init(self: EmulatorState, config: Any) -> None:
        init(self, config)
        watch.add(*(app.client_secret for app in config.apps))

    def recording_issue_tokens(self: EmulatorState, *args: Any, **kwargs: Any) -> dict[str, Any]:
        token_set = issue_tokens(self, *args, **kwargs)
        watch.add(*(token_set.get(name) for name in ("access_token", "refresh_token", "id_token")))
        return token_set

    def recording_new_code(self: EmulatorState, *args: Any, **kwargs: Any) -> str:
        code = new_code(self, *args, **kwargs)
        watch.add(code)
        return code

    def recording_register_app(self: EmulatorState, app: Any) -> None:
        watch.add(app.client_secret)
        register_app(self, app)

    def recording_verifier() -> str:
        verifier = new_verifier()
        watch.add(verifier)
        return verifier

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EmulatorState, "__init__", recording_init)
        patch.setattr(EmulatorState, "issue_tokens", recording_issue_tokens)
        patch.setattr(EmulatorState, "new_code", recording_new_code)
        patch.setattr(EmulatorState, "register_app", recording_register_app)
        patch.setattr(xero_identity, "new_code_verifier", recording_verifier)
        patch.setattr(linking, "new_code_verifier", recording_verifier)
        yield
