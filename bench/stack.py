"""The benchmark's local stack: local/stack/offline_stack.py's OfflineStack (DynamoDB Local, moto, every resource of
template.yaml, the HTTP API, the Xero emulator in-process), started without its queue pollers so each sync runs in a
process of its own (bench/sync_process.py), and driven as a person would: the API through local/cli/stack_client.py's
StackHandle, the emulator through its admin API."""

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from local.cli.stack_client import StackHandle
from local.stack.offline_stack import OfflineStack
from local.stack.state_file import STATE_DIR
from local.stack.template import REPO_ROOT

BENCH_STATE_DIR = STATE_DIR / "bench"  # apart from `make up`'s stack, so both can run
SYNC_FUNCTION = "SyncClientFunction"
DISPATCH_FUNCTION = "SyncDispatchFunction"
# The functions' logs go to the child's stderr file; WARNING keeps them to what went wrong. The child imports bench
# and local from its working directory (the repo root, `python -m`) and xero_sync from .venv's editable install.
CHILD_ENVIRONMENT = {"POWERTOOLS_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Org:
    size: str
    tenant_id: str
    counts: dict[str, int]

    @property
    def records(self) -> int:
        return sum(self.counts.values())


class BenchStack:
    def __init__(self, state_dir: Path = BENCH_STATE_DIR) -> None:
        self.state_dir = state_dir
        self.stack = OfflineStack(
            run_schedules=False, state_dir=state_dir, write_state=True, queue_workers=False, max_environments=1
        )
        self.handle: StackHandle | None = None

    def __enter__(self) -> "BenchStack":
        self.stack.start()
        self.handle = StackHandle.attach(self.state_dir)
        return self

    def __exit__(self, *_: object) -> None:
        self.stack.stop()

    @property
    def api(self) -> StackHandle:
        assert self.handle is not None
        return self.handle

    @property
    def emulator_url(self) -> str:
        return self.api.emulator

    # --- the emulator ------------------------------------------------------------------------------------------------
    def configure_xero(self, latency_ms: float, scale: float, limits: bool = True) -> None:
        """Per-call latency, and Xero's limits on a clock `scale` times faster (or out of the way). Every window
        starts afresh, as for a sync a day after the last: runs measured one after another never share a minute."""
        per_minute, per_day = (60, 5000) if limits else (10**9, 10**9)
        body = {
            "latencyMs": latency_ms,
            "rateLimits": {"timeScale": scale, "tenantPerMinute": per_minute, "tenantPerDay": per_day},
        }
        self.api.emulator_admin("POST", "/config", json=body)

    def create_org(self, size: str, seed: str) -> Org:
        org = self.api.create_org(f"Bench {size} {seed}", size, seed=seed)
        return Org(size, org["tenantId"], {k: int(v) for k, v in org["counts"].items()})

    def truth(self, tenant_id: str, resource: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.api.emulator_admin("GET", f"/orgs/{tenant_id}/records/{resource}")[
            "records"
        ]
        return records

    def clear_stats(self) -> None:
        self.api.emulator_admin("DELETE", "/stats")

    def stats(self, tenant_id: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.api.emulator_admin("GET", "/stats?timeline=1")["tenants"].get(tenant_id, {})
        return stats

    # --- the product, through its API --------------------------------------------------------------------------------
    def link(self, practice: str, tenant_id: str) -> tuple[str, str]:
        """Links the organisation; returns the client id and the run of its first sync (queued, not yet run)."""
        outcome = self.api.link(practice, [tenant_id])
        (client_id,) = outcome["clientIds"]
        run = self.api.first_run_after(practice, client_id, set())
        return client_id, str(run["runId"])

    def sync_now(self, practice: str, client_id: str) -> str:
        return str(self.api.sync_now(practice, client_id)["runId"])

    # --- child processes ---------------------------------------------------------------------------------------------
    def function_job(self, logical_id: str) -> dict[str, Any]:
        function = self.stack.function_definitions[logical_id]
        assert self.stack.template is not None
        return {
            "logical_id": logical_id,
            "code_dir": str(function.code_dir),
            "handler": function.handler,
            "timeout": function.timeout,
            "memory_mb": function.memory_mb,
            "physical_name": self.stack.template.physical_name(logical_id),
        }

    def sync_job(self, client_id: str, run_id: str) -> dict[str, Any]:
        assert self.stack.template is not None
        (source,) = [s for s in self.stack.template.queue_event_sources() if s.function == SYNC_FUNCTION]
        return {
            "function": self.function_job(SYNC_FUNCTION),
            "source": asdict(source),
            "queue_url": self.stack.queue_url(source.queue),
            "queue_arn": self.stack.physical[source.queue].attributes["Arn"],
            "region": self.stack.region,
            "client_id": client_id,
            "run_id": run_id,
        }

    def run_child(self, module: str, job: dict[str, Any], environment: dict[str, str], log_name: str) -> str:
        """Runs `python -m module` with the stack's environment (and these overrides); returns its stdout."""
        log = self.state_dir / "logs" / f"{log_name}.log"
        env = {**os.environ, **CHILD_ENVIRONMENT, **environment}
        with log.open("w") as stderr:
            done = subprocess.run(  # noqa: S603 - our own module, our own interpreter
                [sys.executable, "-m", module],
                input=json.dumps(job),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=REPO_ROOT,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{module} exited with {done.returncode}: see {log}")
        return done.stdout
