"""`make bench`: the sync measured against Xero's floor and against Singer's tap-xero, side by side, on the same
emulated organisations (docs/benchmark.md has the method, the models and what each figure means)."""
