"""Chaos: `python -m local chaos --seeds 1-100` (driver.py), each seed's plan (plan.py), what must hold once it has
settled (checks.py), and the queue worker process that is killed and injects AWS's faults (worker_process.py,
aws_faults.py)."""
