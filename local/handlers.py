"""Loads a function's handler from its code directory, as Lambda would (`app.lambda_handler` in CodeUri).

Every function's module is called `app`, so each is loaded under its own module name to keep them apart."""

import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from local.template import REPO_ROOT, Function

LAYER_DIR = REPO_ROOT / "layers" / "common"  # what Lambda mounts at /opt/python

Handler = Callable[[dict[str, Any], Any], Any]


def load_handler(function: Function) -> Handler:
    handler: Handler = getattr(load_module(function), function.handler.rsplit(".", 1)[1])
    return handler


def load_module(function: Function) -> ModuleType:
    return _load(function.logical_id, function.code_dir, function.handler)


@cache
def _load(logical_id: str, code_dir: Path, handler_name: str) -> ModuleType:
    if str(LAYER_DIR) not in sys.path:
        sys.path.insert(0, str(LAYER_DIR))
    module_name = handler_name.rsplit(".", 1)[0]
    source = code_dir / f"{module_name.replace('.', '/')}.py"
    unique_name = f"lambda_{logical_id}_{module_name}"
    spec = importlib.util.spec_from_file_location(unique_name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique_name] = module
    spec.loader.exec_module(module)
    return module
