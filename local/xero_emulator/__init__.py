"""A local, deterministic emulator of Xero's OAuth2, Identity and Accounting APIs (see docs/xero-emulator.md)."""

from local.xero_emulator.config import EmulatorConfig, RateLimitConfig
from local.xero_emulator.server import XeroEmulator

__all__ = ["EmulatorConfig", "RateLimitConfig", "XeroEmulator"]
