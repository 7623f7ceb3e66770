"""Cold-start import time of each function's handler module: `.venv/bin/python -m scripts.import_times [--runs N]`
from the repo root (which `-m` puts on sys.path, for local.stack.template).

Each function's app.py is imported in a fresh interpreter, as Lambda's init does, with the environment template.yaml
gives it (resolved with local names, as the tests do) and tracing off as locally. The table shows the median of the
runs' wall time of the import and the handler module's slowest imports by `python -X importtime` (cumulative).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

from local.stack.template import Template

# The process-level variables a function also gets from Lambda (region, credentials) or the tests (tracing off).
BASE_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def _import(code_dir: str, module: str, environment: dict[str, str]) -> tuple[float, list[tuple[float, str]]]:
    # Run in the function's code directory, which `-c` puts first on sys.path as Lambda puts its CodeUri.
    program = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run(  # noqa: S603 (this interpreter, on the template's own handlers)
        [sys.executable, "-X", "importtime", "-c", program],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=code_dir,
    )
    # -X importtime lists a module's imports (one level deeper: two more spaces) before the module itself.
    children: list[tuple[float, str]] = []
    for line in done.stderr.splitlines():
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
    return float(done.stdout.strip()), sorted(children, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="imports per function; the median is shown")
    parser.add_argument("--top", type=int, default=3, help="slowest imports shown per function")
    arguments = parser.parse_args()

    os.environ.setdefault("AWS_DEFAULT_REGION", BASE_ENVIRONMENT["AWS_DEFAULT_REGION"])  # the SAM translator needs one
    template = Template()
    functions = template.functions(template.named_resources())
    print(f"{'function':<22} {'import s':>8}  slowest imports of the handler module (cumulative s)")
    started = time.monotonic()
    for logical_id, function in sorted(functions.items()):
        environment = {**os.environ, **BASE_ENVIRONMENT, **function.environment}
        module = function.handler.rpartition(".")[0]
        runs = [_import(str(function.code_dir), module, environment) for _ in range(arguments.runs)]
        median = statistics.median(seconds for seconds, _ in runs)
        slowest = ", ".join(f"{name} {seconds:.2f}" for seconds, name in runs[-1][1][: arguments.top])
        print(f"{logical_id:<22} {median:>8.3f}  {slowest}")
    print(f"({arguments.runs} runs each, {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
