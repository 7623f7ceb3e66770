"""`make test`'s scheduling (tests/scheduling.py) on a suite of its own: the files a tier puts in one group, because
they share a costly start, run on one worker; every other file runs whole on one worker; the work is still shared."""

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from local.stack.template import REPO_ROOT

CONFTEST = """
import pytest

pytest_plugins = ("tests.scheduling",)


def pytest_itemcollected(item):
    if item.path.name.startswith("test_shared_start"):
        item.add_marker(pytest.mark.xdist_group("shared-start"))
"""
TESTS = "".join(f"def test_{n}():\n    pass\n\n\n" for n in range(3))
RAN = re.compile(r"^\[(gw\d)\] .*PASSED (test_\w+)\.py::test_\d")


def test_a_groups_files_run_on_one_worker_and_every_other_file_whole_on_one(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for n in range(4):
        (tmp_path / f"test_shared_start_{n}.py").write_text(TESTS)
        (tmp_path / f"test_own_{n}.py").write_text(TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
         "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    workers_of: defaultdict[str, set[str]] = defaultdict(set)
    for line in done.stdout.splitlines():
        if found := RAN.match(line):
            workers_of[found[2]].add(found[1])
    assert len(workers_of) == 8, done.stdout[-2000:]
    shared = set().union(*(w for file, w in workers_of.items() if file.startswith("test_shared_start")))
    assert len(shared) == 1, f"the group ran on {sorted(shared)}"
    assert all(len(w) == 1 for w in workers_of.values()), dict(workers_of)
    assert len(set().union(*workers_of.values())) > 1, "the files are still shared among the workers"
