"""Cold-start import time of each function's handler module, now and before the cold-start work (issue 23).

Each function's app.py is imported in a fresh interpreter, as Lambda's init does, with the environment template.yaml
gives it (resolved with local names, as the tests do) and what Lambda adds: LAMBDA_TASK_ROOT, by which the X-Ray SDK
samples as in Lambda, and tracing on (`Tracing: Active`), so the Tracer patches what it patches there. The code is
imported as `make build` ships it: `functions/` and `layers/common/` copied, then compiled by
scripts/compile_bytecode.py (the dependencies come from .venv, compiled at install). The same measurement runs on the
tree before the change (those folders of PRE_CHANGE_COMMIT, extracted with `git archive`, compiled the same way), the
two trees in turn for each function and run, so both see the same load on a shared machine. A first import of each
is not counted: the tree now's is the one profiled by `python -X importtime` for the handler module's slowest imports
(cumulative), kept out of the timed imports with its bookkeeping; the smoke mode skips the tree before's. Reported per
function: the median wall time and CPU time of the import, and those slowest imports.

`python -m bench.import_times [--runs N] [--before COMMIT]` prints the table alone (against another commit's tree
with --before); `make bench` includes it.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from local.stack.template import REPO_ROOT, Template

# The tree before the cold-start work: each handler then imported most of the package.
PRE_CHANGE_COMMIT = "81b4acf"
TARGET_SECONDS = 0.4
# The process-level variables a function also gets from Lambda (region, credentials, its task root).
BASE_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "LAMBDA_TASK_ROOT": "/var/task",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# What a function pays before its own code, measured the same way: PynamoDB (with botocore, the AWS SDK's core) and
# pydantic, which every function needs; the HTTP functions add Powertools' resolver with its request validation.
FLOOR_MODULES = {
    "pynamodb + pydantic": "pynamodb.models, pydantic",
    "pynamodb + pydantic + Powertools' validating HTTP resolver": (
        "pynamodb.models, pydantic, aws_lambda_powertools.event_handler.openapi.params"
    ),
}
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")
_TREE_PARTS = ("functions", "layers/common")


@dataclass(frozen=True)
class Handler:
    code_dir: str  # relative to the tree's root: functions/<name>
    module: str
    environment: dict[str, str]


@dataclass(frozen=True)
class Import:
    wall: float
    cpu: float


def handlers() -> dict[str, Handler]:
    """Each function of template.yaml: its code folder, handler module and environment."""
    os.environ.setdefault("AWS_DEFAULT_REGION", BASE_ENVIRONMENT["AWS_DEFAULT_REGION"])  # the SAM translator needs one
    template = Template()
    return {
        logical_id: Handler(
            code_dir=str(function.code_dir.relative_to(REPO_ROOT)),
            module=function.handler.rpartition(".")[0],
            environment={**BASE_ENVIRONMENT, **function.environment},
        )
        for logical_id, function in sorted(template.functions(template.named_resources()).items())
    }


def import_once(root: Path, handler: Handler) -> Import:
    """Imports one handler module of the tree at `root` in a fresh interpreter, its path as Lambda's: the function's
    code folder, then that tree's layer (both ahead of the editable install's)."""
    program = (
        "import time; w, c = time.perf_counter(), time.process_time(); "
        f"import {handler.module}; print(time.perf_counter() - w, time.process_time() - c)"
    )
    wall, cpu = (float(figure) for figure in _run_import(root, handler, program).stdout.split())
    return Import(wall, cpu)


def slowest_imports(root: Path, handler: Handler) -> list[tuple[float, str]]:
    """The handler module's imports by their cumulative seconds under `python -X importtime`, slowest first. An import
    of its own, not timed: the profile's own cost would be in the figure."""
    return _slowest_children(
        _run_import(root, handler, f"import {handler.module}", "-X", "importtime").stderr, handler.module
    )


def _run_import(root: Path, handler: Handler, program: str, *options: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join((str(root / handler.code_dir), str(root / "layers" / "common")))
    return subprocess.run(  # noqa: S603 (this interpreter, on the template's own handlers)
        [sys.executable, *options, "-c", program],
        env={**os.environ, **handler.environment, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )


def _slowest_children(importtime: str, module: str) -> list[tuple[float, str]]:
    # -X importtime lists a module's imports (one level deeper: two more spaces) before the module itself.
    children: list[tuple[float, str]] = []
    for line in importtime.splitlines():
        found = _IMPORT_LINE.match(line)
        if not found:
            continue
        depth, name = len(found.group(3)), found.group(4)
        if depth == 3:
            children.append((int(found.group(2)) / 1e6, name))
        elif depth == 1 and name == module:
            break
        elif depth == 1:
            children = []
    return sorted(children, reverse=True)


def floor_seconds(statement: str, runs: int) -> float:
    """The median wall time of importing `statement`'s modules in a fresh interpreter."""
    program = f"import time; w = time.perf_counter(); import {statement}; print(time.perf_counter() - w)"
    times = [
        float(
            subprocess.run(  # noqa: S603 (this interpreter, fixed modules)
                [sys.executable, "-c", program],
                env={**os.environ, **BASE_ENVIRONMENT},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def copy_working_tree(into: Path) -> None:
    """Writes this checkout's functions/ and layers/common/ under `into`, as they are now (changes included)."""
    for part in _TREE_PARTS:
        shutil.copytree(REPO_ROOT / part, into / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def compile_as_built(root: Path) -> None:
    """Compiles the tree's code as `make build` compiles what it ships."""
    subprocess.run(  # noqa: S603 - this interpreter, the repo's own script
        [sys.executable, REPO_ROOT / "scripts" / "compile_bytecode.py", *(root / part for part in _TREE_PARTS)],
        check=True,
    )


def extract_pre_change(into: Path, commit: str = PRE_CHANGE_COMMIT) -> str | None:
    """Writes the commit's functions/ and layers/common/ under `into`; the reason when it cannot (None: done)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "pre-change.tar"
    with archive.open("wb") as out:
        done = subprocess.run(  # noqa: S603 - whichever git is on PATH, on this repository
            ["git", "archive", "--format=tar", commit, *_TREE_PARTS],  # noqa: S607
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.PIPE,
            text=False,
            check=False,
        )
    if done.returncode != 0:
        return f"commit {commit} is not in this clone ({done.stderr.decode().strip().splitlines()[-1]})"
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return None


def _summary(imports: list[Import]) -> dict[str, Any]:
    return {
        "seconds": round(statistics.median(i.wall for i in imports), 3),
        "cpuSeconds": round(statistics.median(i.cpu for i in imports), 3),
    }


def measure(
    runs: int, log: Callable[[str], None] = print, warm_up: bool = True, before: str = PRE_CHANGE_COMMIT
) -> dict[str, Any]:
    """Each handler's import now and in the tree of commit `before`, interleaved, `runs` times each, after an
    uncounted first import of each (now: the one profiled for its slowest imports; before: only when `warm_up`); and
    the AWS SDK's floor."""
    found = handlers()
    with tempfile.TemporaryDirectory(prefix="handler-imports-") as workdir:
        now_root, before_root = Path(workdir) / "now", Path(workdir) / "before"
        copy_working_tree(now_root)
        unavailable = extract_pre_change(before_root, before)
        trees = {"now": now_root} if unavailable else {"now": now_root, "before": before_root}
        for root in trees.values():
            compile_as_built(root)
        taken: dict[str, dict[str, list[Import]]] = {tree: {name: [] for name in found} for tree in trees}
        present = {
            tree: {n: h for n, h in found.items() if (root / h.code_dir).is_dir()} for tree, root in trees.items()
        }
        # The first import of each reads the files once: not counted.
        slowest = {name: slowest_imports(now_root, handler)[:3] for name, handler in present["now"].items()}
        for handler in present["before"].values() if warm_up and "before" in present else ():
            import_once(before_root, handler)
        for run in range(runs):
            for name in found:
                for tree, root in trees.items():
                    if name in present[tree]:  # a function added since has no figure before
                        taken[tree][name].append(import_once(root, present[tree][name]))
            log(f"handler imports: run {run + 1} of {runs}")
    return {
        "runs": runs,
        "preChangeCommit": before,
        "preChangeUnavailable": unavailable,
        "targetSeconds": TARGET_SECONDS,
        "functions": {
            name: {tree: _summary(taken[tree][name]) for tree in trees if taken[tree][name]}
            | {
                "module": found[name].module,
                "slowestNow": [{"module": m, "seconds": round(s, 3)} for s, m in slowest[name]],
            }
            for name in found
        },
        "floor": {label: round(floor_seconds(modules, runs), 3) for label, modules in FLOOR_MODULES.items()},
    }


def print_table(results: dict[str, Any], console: Console) -> None:
    before_note = results["preChangeUnavailable"] or f"commit {results['preChangeCommit']}"
    table = Table(
        title=f"Handler import (cold start; median of {results['runs']}, wall and CPU s; before: {before_note})"
    )
    for column in ("function", "now", "before", "target", "slowest imports now (cumulative s)"):
        table.add_column(
            column, justify="left" if column in ("function", "slowest imports now (cumulative s)") else "right"
        )
    for name, figures in results["functions"].items():
        now, before = figures["now"], figures.get("before")
        table.add_row(
            name,
            f"{now['seconds']:.2f} (CPU {now['cpuSeconds']:.2f})",
            f"{before['seconds']:.2f} (CPU {before['cpuSeconds']:.2f})" if before else "n/a",
            ("pass" if now["seconds"] <= results["targetSeconds"] else "FAIL") + f" <= {results['targetSeconds']}",
            ", ".join(f"{s['module']} {s['seconds']:.2f}" for s in figures["slowestNow"]),
        )
    console.print(table)
    console.print(
        "Floor (the same machine, the same minute): "
        + ", ".join(f"import {label} {seconds:.2f} s" for label, seconds in results["floor"].items()),
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.import_times", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="imports per function and tree; the median is shown")
    parser.add_argument("--before", default=PRE_CHANGE_COMMIT, help="the commit whose tree is the 'before' column")
    arguments = parser.parse_args()
    print_table(measure(arguments.runs, before=arguments.before), Console(width=None if sys.stdout.isatty() else 200))


if __name__ == "__main__":
    main()
