"""The secrets guard's reach beyond this process: the log files local stacks write (moto, DynamoDB Local, the
`python -m local` processes the CLI tests start)."""

import base64
import json
import tempfile
from pathlib import Path

from tests.log_guard import SecretWatch, subprocess_log_leaks


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


def test_a_known_secret_or_any_xero_access_token_in_a_stacks_log_file_is_found() -> None:
    # (Outside the session's temporary directory, which the session's own guard searches at its end.)
    with tempfile.TemporaryDirectory() as directory:
        _leaks_found_in(Path(directory))


def _leaks_found_in(tmp_path: Path) -> None:
    # Given a watch that knows one secret, and log files of two stacks
    watch = SecretWatch()
    watch.add("a-refresh-token-we-issued-0123456789")
    (tmp_path / "stack-1" / "logs").mkdir(parents=True)
    (tmp_path / "stack-2" / "logs").mkdir(parents=True)
    (tmp_path / "stack-1" / "logs" / "moto.log").write_text(
        "GET / 200\nPOST body refresh_token=a-refresh-token-we-issued-0123456789\n"
    )
    # a subprocess's emulator issued this one: this process never saw it, its claims give it away
    token = _jwt({"authentication_event_id": "e", "xero_userid": "u"})
    (tmp_path / "stack-2" / "logs" / "local.log").write_text(f"Authorization: Bearer {token}\n")
    (tmp_path / "stack-2" / "logs" / "dynamodb.log").write_text(f"an unrelated JWT {_jwt({'sub': 'x'})}\n")

    # When the session's temporary directory is searched
    leaks = subprocess_log_leaks(watch, tmp_path)

    # Then both leaks are found, with the secret itself masked
    assert leaks == ["moto.log: POST body refresh_token=<SECRET>", "local.log: a Xero access token"]
