"""python -m local.xero_emulator --host 127.0.0.1 --port 8765 [...]: run the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from local.xero_emulator.config import EmulatorConfig, RateLimitConfig, RegisteredApp
from local.xero_emulator.server import XeroEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.xero_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="shorten rate-limit windows and Retry-After: 60 makes a minute last 1 s",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="base delay added to every API call")
    parser.add_argument("--per-record-latency-ms", type=float, default=0.0, help="extra delay per record returned")
    parser.add_argument("--no-rate-limits", action="store_true", help="never answer 429 (headers still sent)")
    parser.add_argument("--client-id", help="register a default app with this client id")
    parser.add_argument("--client-secret", help="the default app's secret (omit for a PKCE-only app)")
    parser.add_argument(
        "--redirect-uri", action="append", default=[], help="the default app's redirect URI (repeatable)"
    )
    parser.add_argument("--app-name", default="Xero Emulator App", help="ProviderName in API responses")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if (args.client_secret or args.redirect_uri) and not args.client_id:
        parser.error("--client-secret/--redirect-uri need --client-id")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apps = []
    if args.client_id:
        apps.append(RegisteredApp(args.client_id, args.client_secret, args.redirect_uri, args.app_name))
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        per_record_latency_ms=args.per_record_latency_ms,
        rate_limits=RateLimitConfig(enabled=not args.no_rate_limits, time_scale=args.time_scale),
        apps=apps,
        quiet=not args.verbose,
    )
    emulator = XeroEmulator(config).start()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"Xero emulator listening on {emulator.base_url}", flush=True)
    try:
        stop.wait()
    finally:
        emulator.stop()
        print("Xero emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
