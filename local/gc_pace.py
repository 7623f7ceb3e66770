"""How often the tooling's long-lived Python processes collect garbage: the test workers, the local stack and its
queue workers, its moto server. They hold large heaps (moto's tables and queues, the emulator's organisations, every
test module), and CPython's default pace (a young collection every 2,000 allocations, a full one after 100 of those)
re-scans them so often that collecting was a tenth of a test worker's CPU. Behaviour is the same: only when cycles
are freed changes. The benchmark's own processes keep the defaults, which Lambda runs the product with."""

import gc

# Allocations (net of frees) between young collections, and young collections between older ones (CPython: 2,000,
# 10, 10).
THRESHOLDS = (20_000, 20, 20)


def collect_less_often() -> None:
    gc.set_threshold(*THRESHOLDS)


def keep_startup_out_of_collections() -> None:
    """What the process built to start (imported modules, collected tests, a server's routes) lives as long as it does:
    frozen, no collection scans it again."""
    gc.collect()
    gc.freeze()
