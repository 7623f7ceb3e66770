"""Loads a function's handler from its code directory, as Lambda would (`app.lambda_handler` in CodeUri).

Every function's module is called `app`, so each copy is loaded under its own module name to keep them apart. A copy
is one execution environment: handlers keep per-invocation state in module globals (the Powertools resolver's current
event, the batch processor's records), so one copy serves one invocation at a time. Instance 0 is the copy shared by
in-process callers (tests/api.py, the OpenAPI merge); the local runtime asks for a new instance for each execution
environment it starts."""

import contextvars
import importlib.util
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from local.stack.template import Function

Handler = Callable[[Any, Any], Any]
# The function whose handler is running (its logical id), for whoever watches what a function does (the tests
# check each AWS call a function makes against its IAM policy).
CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_function", default=None)


def load_handler(function: Function, instance: int = 0) -> Handler:
    """The handler (`module.attribute` of Handler) of that copy of the function's module."""
    handler: Handler = getattr(load_module(function, instance), function.handler.rpartition(".")[2])

    def invoke(event: Any, context: Any) -> Any:
        token = CURRENT_FUNCTION.set(function.logical_id)
        try:
            return handler(event, context)
        finally:
            CURRENT_FUNCTION.reset(token)

    return invoke


def load_module(function: Function, instance: int = 0) -> ModuleType:
    """That copy of the function's handler module, imported the first time it is asked for."""
    return _load(function.logical_id, function.code_dir, function.handler, instance)


@cache
def _load(logical_id: str, code_dir: Path, handler: str, instance: int) -> ModuleType:
    module_name = handler.rpartition(".")[0]
    source = code_dir / f"{module_name.replace('.', '/')}.py"
    unique = re.sub(r"\W", "_", f"{logical_id}_{instance}")
    spec = importlib.util.spec_from_file_location(f"_local_lambda.{unique}.{module_name}", source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {logical_id}'s handler from {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module
