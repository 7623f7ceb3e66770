"""What `make build` adds to sam build: bytecode that a cold start uses as it is (scripts/compile_bytecode.py)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from local.stack.template import REPO_ROOT
from tests.conftest import TEMPLATE

SCRIPT = REPO_ROOT / "scripts" / "compile_bytecode.py"
ZIP_DATE = 315532800  # 1980-01-01: the date `sam deploy` gives every file it zips
# Imports a handler module as Lambda's init would, and prints the modules of the package whose source it compiled.
IMPORT_AND_LIST_COMPILED = """
import importlib._bootstrap_external as external, json, sys
compiled, source_to_code = [], external.SourceLoader.source_to_code
def recording(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return source_to_code(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = recording
import app
print(json.dumps([path for path in compiled if path.startswith(sys.argv[1])]))
"""


def built_copy(into: Path) -> tuple[Path, Path]:
    """The sync worker's code folder and the layer's package, copied as sam build leaves them (sources only)."""
    function, layer = into / "SyncClientFunction", into / "CommonLayer" / "python"
    shutil.copytree(REPO_ROOT / "functions" / "sync_client", function, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO_ROOT / "layers" / "common" / "xero_sync", layer / "xero_sync", ignore=shutil.ignore_patterns("__pycache__")
    )
    return function, layer


def compiled_at_cold_start(built: Path, function: Path, layer: Path) -> list[str]:
    """Dates every file as the deployment zip does, then imports the handler as a fresh Lambda process would."""
    for path in built.rglob("*"):
        os.utime(path, (ZIP_DATE, ZIP_DATE))
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join((str(function), str(layer))),
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's code folders are read-only
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, on a copy of the product's code
        [sys.executable, "-c", IMPORT_AND_LIST_COMPILED, str(built)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=built,
    )
    return json.loads(done.stdout)


def test_a_cold_start_compiles_none_of_the_built_code_though_the_zip_redates_every_file(tmp_path):
    function, layer = built_copy(tmp_path / "build")

    subprocess.run([sys.executable, SCRIPT, tmp_path / "build"], check=True)  # noqa: S603 - the repo's own script

    assert compiled_at_cold_start(tmp_path / "build", function, layer) == []
    assert (function / "__pycache__").is_dir()


def test_bytecode_checked_by_timestamp_would_be_compiled_again_at_every_cold_start(tmp_path):
    # What Python writes by default (and pip installs), to show that the first test can see a compile.
    function, layer = built_copy(tmp_path / "build")
    subprocess.run([sys.executable, "-m", "compileall", "-q", tmp_path / "build"], check=True)  # noqa: S603

    compiled = compiled_at_cold_start(tmp_path / "build", function, layer)

    assert str(function / "app.py") in compiled
    assert str(layer / "xero_sync" / "sync_worker.py") in compiled


def test_the_bytecode_is_written_by_the_functions_runtime():
    spec = importlib.util.spec_from_file_location("compile_bytecode", SCRIPT)
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (runtime,) = {f["Properties"]["Runtime"] for f in TEMPLATE.of_type("AWS::Lambda::Function").values()}
    assert runtime == "python{}.{}".format(*script.LAMBDA_PYTHON)
