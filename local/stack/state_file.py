"""Where a running local stack writes what the other commands need (ports, PIDs, the JWT key): a git-ignored folder.
Light on purpose: `python -m local token|nightly|down` read it without importing the stack."""

import json
from pathlib import Path
from typing import Any

STATE_DIR = Path(__file__).resolve().parents[2] / ".local-stack"
STATE_FILE_NAME = "stack.json"
SIGNING_KEY_NAME = "jwt-signing-key.pem"


def read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE_NAME
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def write_state(state_dir: Path, state: dict[str, Any]) -> Path:
    path = state_dir / STATE_FILE_NAME
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2, default=str))
    temporary.replace(path)
    return path
