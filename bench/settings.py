"""What a benchmark run measures, and with what: the modes of `make bench` and their parameters."""

from dataclasses import dataclass, field

# A day of a practice's client at each size (invoices raised and paid, payments, contacts renamed...): the
# emulator's /changes applies this many edits the way Xero users make them.
CHANGES_PER_DAY = {"tiny": 5, "small": 10, "medium": 40, "large": 200}
# How much faster the emulator's rate-limit clock runs for the large organisation, which would take over an hour of
# real minutes for the two tools (~22 minutes of ours, ~40 of tap-xero's). Smaller ones run on Xero's real minute:
# their figures are measured, not projected (bench/limits.py projects the large one's onto real minutes).
DEFAULT_TIME_SCALE = 4.0
SCALED_SIZES = ("large",)
# SQS's latency for one SendMessageBatch, as bench/sqs_sink.py answers the dispatch (a typical in-region figure;
# AWS publishes none).
SQS_LATENCY_MS = 20.0


@dataclass(frozen=True)
class Settings:
    mode: str = "quick"  # smoke | quick | full
    sizes: tuple[str, ...] = ("small", "medium")
    latency_ms: float = 100.0
    time_scale: float = DEFAULT_TIME_SCALE
    engine_cost_sizes: tuple[str, ...] = ("medium",)
    read_sizes: tuple[str, ...] = ("medium",)  # read whole through the data API after the initial sync
    dispatch_clients: tuple[int, ...] = (1_000, 10_000)
    changes: dict[str, int] = field(default_factory=lambda: dict(CHANGES_PER_DAY))
    sqs_latency_ms: float = SQS_LATENCY_MS
    import_runs: int = 5  # cold imports of each handler, now and before (bench/import_times.py)
    import_warm_up: bool = True  # a first, uncounted import of the tree before's (the smoke's one run needs none)

    @property
    def latency_seconds(self) -> float:
        return self.latency_ms / 1000

    def scale(self, size: str) -> float:
        """How much faster than Xero's the emulator's minute runs for this organisation."""
        return self.time_scale if size in SCALED_SIZES else 1.0


def settings_for(mode: str, latency_ms: float = 100.0, time_scale: float = DEFAULT_TIME_SCALE) -> Settings:
    if mode == "smoke":
        # CI's guard against rot: every section runs, on the smallest inputs and a short latency (under a minute).
        return Settings(
            mode,
            ("tiny",),
            min(latency_ms, 20.0),
            time_scale,
            ("tiny",),
            ("tiny",),
            (100, 500),
            import_runs=1,
            import_warm_up=False,
        )
    if mode == "full":
        return Settings(mode, ("small", "medium", "large"), latency_ms, time_scale, ("medium", "large"))
    return Settings(mode, ("small", "medium"), latency_ms, time_scale)
