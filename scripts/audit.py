"""make audit: every dependency lock against PyPI's advisory data (pip-audit), without installing anything.

Each lock is read as it is (`--disable-pip --require-hashes`: the pins and hashes, no resolver) and each pin is
looked up in PyPI's advisory data (pip-audit's `pypi` service, pypi.org/pypi/NAME/VERSION/json), or in OSV's when
only OSV answers. `--strict`: a pin the service does not know fails the audit (without it pip-audit would skip the
pin and still say "No known vulnerabilities found").

Exit 0: no known vulnerability in any pin, or neither advisory service answers from this machine: then one line
starting `audit: SKIPPED` says so and why (a machine without that network must not fail CI for it). Exit 1: a known
vulnerability (pip-audit's table names the package, the advisory and the fixed versions) or a pin not audited.
Run with .venv-audit's python (make audit).
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"
TIMEOUT_SECONDS = 15
# OSV's API, or a mirror of it (pip-audit's --osv-url).
OSV_URL = os.environ.get("AUDIT_OSV_URL", "https://api.osv.dev/v1/query")


def locks() -> list[Path]:
    """Every lock: the runtime one (the layer) and each requirements/*.txt."""
    return [ROOT / "layers/common/requirements.txt", *sorted((ROOT / "requirements").glob("*.txt"))]


def probe(service: str) -> str | None:
    """None when the service answers a lookup of pip-audit's own pin as pip-audit would ask it; else why not."""
    name, pin = "pip-audit", version("pip-audit")
    if service == "pypi":
        request = urllib.request.Request(f"https://pypi.org/pypi/{name}/{pin}/json")
    else:
        body = json.dumps({"package": {"name": name, "ecosystem": "PyPI"}, "version": pin}).encode()
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(OSV_URL, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (https, or a mirror)
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        return f"{request.full_url} answered HTTP {error.code}"
    except (OSError, ValueError) as error:  # no route, no DNS, timeout, TLS, not JSON
        return f"{request.full_url}: {error}"
    if service == "pypi" and not (isinstance(answer, dict) and "info" in answer):
        return f"{request.full_url} did not answer a release"
    return None


def classify(returncode: int, stderr: str) -> str:
    """What one pip-audit run found: clean, vulnerable, unreachable (the service stopped answering) or error."""
    if returncode == 0:
        return "clean"
    if "known vulnerabilit" in stderr and "Found " in stderr:
        return "vulnerable"
    # No route or DNS (ConnectionError), a timeout, or the service failing (ServiceError: a 5xx, say).
    if any(sign in stderr for sign in ("ConnectionError", "Could not connect", "ServiceError")):
        return "unreachable"
    return "error"


def main() -> int:
    reasons = {}
    for service in ("pypi", "osv"):
        reason = probe(service)
        if reason is None:
            break
        reasons[service] = reason
    else:
        print(
            f"audit: SKIPPED: no advisory service answers from this machine ({'; '.join(reasons.values())}); "
            "the locks were not audited"
        )
        return 0
    if reasons:
        print(f"audit: using {service}: {'; '.join(reasons.values())}")
    failed = []
    for lock in locks():
        name = lock.relative_to(ROOT)
        command = [
            str(PIP_AUDIT),
            "--requirement",
            str(lock),
            "--disable-pip",
            "--require-hashes",
            "--strict",
            "--vulnerability-service",
            service,
            "--progress-spinner",
            "off",
            "--timeout",
            str(TIMEOUT_SECONDS),
        ]
        if service == "osv":
            command += ["--osv-url", OSV_URL]
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (our arguments)
        verdict = classify(run.returncode, run.stderr)
        print(f"audit: {name} ({service}): {verdict}")
        if verdict != "clean":
            sys.stdout.write(run.stdout)
            sys.stdout.write(run.stderr if verdict != "unreachable" else "")
        if verdict == "unreachable":
            print(f"audit: SKIPPED {name}: the {service} advisory service stopped answering; this lock was not audited")
        elif verdict != "clean":
            failed.append(str(name))
    if failed:
        print(f"audit: FAILED: {', '.join(failed)} (upgrade the pin to a fixed version: make lock UPGRADE=package)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
