"""Run-time settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RateLimitConfig:
    """Xero's published limits (developer.xero.com/documentation/oauth2/limits)."""

    enabled: bool = True
    tenant_per_minute: int = 60
    tenant_per_day: int = 5000
    tenant_concurrent: int = 5
    app_per_minute: int = 10_000
    # A time scale of 60 makes a rate-limit "minute" last one real second (and a "day" 24 real minutes).
    time_scale: float = 1.0


@dataclass
class RegisteredApp:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    name: str = "Xero Emulator App"


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    latency_ms: float = 0.0
    per_record_latency_ms: float = 0.0
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    apps: list[RegisteredApp] = field(default_factory=list)
    # Un-paged list calls on the paged endpoints that would return more records than this are refused with Xero's
    # "not filtering efficiently" 400, as Xero does for very large organisations.
    unpaged_record_limit: int = 10_000
    quiet: bool = True
