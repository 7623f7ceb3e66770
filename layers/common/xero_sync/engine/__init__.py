"""The sync engine (run.py), as a package: plan, pages, passes and outcomes; the catalogue describes the resources."""

from xero_sync.engine.context import EngineHooks, EngineOptions, options_from_settings
from xero_sync.engine.outcomes import Outcome, OutcomeKind, RunTotals, UnprovenRead, merged_counts
from xero_sync.engine.pages import read_whole
from xero_sync.engine.run import SyncEngine

__all__ = [
    "EngineHooks",
    "EngineOptions",
    "Outcome",
    "OutcomeKind",
    "RunTotals",
    "SyncEngine",
    "UnprovenRead",
    "merged_counts",
    "options_from_settings",
    "read_whole",
]
