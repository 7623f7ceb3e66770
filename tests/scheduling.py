"""How `make test` (`-n 4 --dist loadfile`) shares the tests among its workers.

Each file goes whole to one worker, the slow ones first, so the long files start early and the last minutes go to
short files on every core. Files that a tier marks with one `xdist_group`, because they share a start that costs
seconds of CPU, go to one worker together, which starts it once: the e2e tier's files that run on one kind of local
stack (tests/e2e/conftest.py), the contract tier's on its engines (tests/contract/conftest.py).

xdist's own `--dist loadgroup` would read those marks, but on pytest 9.2 a group never reaches its scheduler
(pytest-dev/pytest-xdist#1386). So each worker writes the groups it collected to a file named by an environment
variable the controller set before starting them, and the scheduler, which runs once every worker has collected,
reads it."""

import contextlib
import json
import os
import shutil
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

GROUPS_FILE = "XERO_SYNC_TEST_GROUPS_FILE"


def pytest_configure(config: pytest.Config) -> None:
    if config.getvalue("dist") == "loadfile":  # the controller (a worker's dist is "no"), before its workers start
        os.environ[GROUPS_FILE] = str(Path(tempfile.mkdtemp(prefix="test-groups-")) / "groups.json")


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getvalue("dist") == "loadfile" and GROUPS_FILE in os.environ:
        shutil.rmtree(Path(os.environ.pop(GROUPS_FILE)).parent, ignore_errors=True)


@pytest.hookimpl(trylast=True)  # after each tier's own ordering and grouping, which this keeps
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
    if "PYTEST_XDIST_WORKER" in os.environ and GROUPS_FILE in os.environ:
        groups = {
            item.nodeid.split("::", 1)[0]: str(mark.args[0])
            for item in items
            if (mark := item.get_closest_marker("xdist_group"))
        }
        # Every worker collects the same tests: whichever writes last writes what the others did.
        written = Path(os.environ[GROUPS_FILE]).with_suffix(f".{os.environ['PYTEST_XDIST_WORKER']}")
        written.write_text(json.dumps(groups))
        written.replace(os.environ[GROUPS_FILE])


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndGroups(LoadFileScheduling):  # type: ignore[misc]
        @cached_property
        def groups(self) -> dict[str, str]:
            with contextlib.suppress(FileNotFoundError):
                return dict(json.loads(Path(os.environ[GROUPS_FILE]).read_text()))
            return {}

        def _split_scope(self, nodeid: str) -> str:
            file = str(super()._split_scope(nodeid))
            return self.groups.get(file, file)

    return FilesAndGroups(config, log)
