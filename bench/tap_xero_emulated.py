"""Singer's tap-xero 2.6.0, pointed at the Xero emulator. Runs inside tap-xero's own virtualenv (.venv-tap), so it
imports nothing of this repository.

tap-xero has no base-URL setting: its client builds Accounting API URLs from the module constant
`tap_xero.client.BASE_URL` and posts token refreshes to a literal `https://identity.xero.com/connect/token`. This
wrapper sets BASE_URL to the emulator's `/api.xro/2.0`, and mounts on each client session an adapter that sends what
is addressed to identity.xero.com to the emulator instead. Nothing else of the tap changes: its paging (100 a page,
one request at a time), If-Modified-Since bookmarks, retries and backoff on 429 are its own.

Discovery's access check is skipped: it reads /Currencies without an Accept header, which the emulator refuses (it
answers JSON only; Xero would answer XML). Discovery then needs no call at all (the catalogue is the tap's schemas),
and a sync with that catalogue makes exactly the calls it would make against Xero.

    python tap_xero_emulated.py EMULATOR_URL [tap-xero's own arguments: --config, --state, --catalog, --discover]

Singer messages go to stdout. With BENCH_TAP_REPORT set, one JSON object is written to that file at exit: the tap's
wall time (from its main() on, imports excluded), peak RSS (VmHWM) and CPU seconds.
"""

import json
import os
import resource
import sys
import time

import tap_xero
import tap_xero.client
from requests.adapters import HTTPAdapter

XERO_IDENTITY = "https://identity.xero.com"


class _ToEmulator(HTTPAdapter):
    def __init__(self, emulator: str) -> None:
        super().__init__()
        self.emulator = emulator

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        request.url = self.emulator + request.url.removeprefix(XERO_IDENTITY)
        return super().send(request, **kwargs)


def point_at(emulator: str) -> None:
    tap_xero.client.BASE_URL = f"{emulator}/api.xro/2.0"
    original_init = tap_xero.client.XeroClient.__init__

    def init(client, config):  # type: ignore[no-untyped-def]
        original_init(client, config)
        client.session.mount(f"{XERO_IDENTITY}/", _ToEmulator(emulator))

    tap_xero.client.XeroClient.__init__ = init
    tap_xero.Context.check_platform_access = lambda context: None


def peak_rss_kb() -> int:
    """VmHWM, this process image's own peak (ru_maxrss carries the parent's over fork and exec on Linux)."""
    with open("/proc/self/status") as status:  # noqa: PTH123 - plain stdlib on purpose (tap-xero's interpreter)
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    emulator = sys.argv.pop(1).rstrip("/")
    point_at(emulator)
    started = time.monotonic()
    try:
        tap_xero.main()
    finally:
        path = os.environ.get("BENCH_TAP_REPORT")
        if path:
            own = resource.getrusage(resource.RUSAGE_SELF)
            report = {
                "seconds": round(time.monotonic() - started, 3),
                "peakRssMb": round(peak_rss_kb() / 1024, 1),
                "cpuSeconds": round(own.ru_utime + own.ru_stime, 3),
            }
            with open(path, "w") as file:  # noqa: PTH123 - plain stdlib on purpose (tap-xero's interpreter)
                json.dump(report, file)


if __name__ == "__main__":
    main()
