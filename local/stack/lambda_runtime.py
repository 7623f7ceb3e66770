"""The functions of template.yaml, invoked in-process as Lambda would invoke them.

Lambda runs one invocation at a time per execution environment and adds environments when invocations overlap.
The handlers keep per-invocation state in module globals (the Powertools resolver's current event, the batch
processor's records), so here too each environment is its own copy of the handler module (local.stack.handler_loader
loads it from the function's code directory under a unique module name), used by one invocation at a time. What the
functions share here and not in Lambda is the shared package itself (one xero_sync per process): its Logger's
appended keys and Lambda-context fields, set per invocation, can show another overlapping invocation's values in
local log lines. A function that must be isolated as Lambda isolates it runs in a process of its own
(`python -m local worker`, local/chaos/worker_process.py).
"""

import itertools
import logging
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from local.stack.handler_loader import Handler, load_handler
from local.stack.lambda_context import LocalLambdaContext
from local.stack.template import Function

log = logging.getLogger("local.stack.lambda_runtime")
DEFAULT_MAX_ENVIRONMENTS = 4
# Every execution environment is a fresh copy of its module, in any stack of this process (0 is the shared copy).
_ENVIRONMENT_INSTANCES = itertools.count(1)


@dataclass
class FunctionRuntime:
    """One function's execution environments: checked out one invocation at a time, added up to a cap."""

    function: Function
    physical_name: str
    max_environments: int = DEFAULT_MAX_ENVIRONMENTS
    _idle: list[Handler] = field(default_factory=list)
    _active: set[LocalLambdaContext] = field(default_factory=set)
    _expired: bool = False  # the stack is stopping
    invocations: int = 0
    _count: int = 0
    _lock: threading.Condition = field(default_factory=threading.Condition)

    @contextmanager
    def _environment(self) -> Any:
        with self._lock:
            while not self._idle and self._count >= self.max_environments:
                self._lock.wait()
            if self._idle:
                handler = self._idle.pop()
            else:
                self._count += 1
                handler = None
        if handler is None:
            try:
                handler = load_handler(self.function, next(_ENVIRONMENT_INSTANCES))  # a cold start
            except BaseException:
                with self._lock:
                    self._count -= 1
                    self._lock.notify()
                raise
        try:
            yield handler
        finally:
            with self._lock:
                self._idle.append(handler)
                self._lock.notify()

    def warm(self) -> None:
        """Loads one environment now (import errors surface at start-up, not on the first request)."""
        with self._environment():
            pass

    def invoke(self, event: Any) -> Any:
        with self._environment() as handler:
            self.invocations += 1
            context = LocalLambdaContext(
                function_name=self.physical_name,
                timeout_seconds=self.function.timeout,
                memory_limit_in_mb=self.function.memory_mb,
            )
            with self._lock:
                self._active.add(context)
                if self._expired:
                    context.expire()
            try:
                return handler(event, context)
            finally:
                with self._lock:
                    self._active.discard(context)
                _forget_unpublished_metrics()

    def expire_invocations(self) -> None:
        """Leaves the invocations under way no time (the stack is stopping): they save their work and return. So
        does every invocation begun after (its batch was received before the stop): with the function's whole timeout,
        a sync would run on past the engines it writes to, and its pool's threads keep the process from exiting."""
        with self._lock:
            self._expired = True
            for context in self._active:
                context.expire()


def _forget_unpublished_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED (the local stack's default), Powertools' flush after an invocation neither
    prints nor clears the metrics, so in a long-lived process they pile up until one holds 100 values, which
    add_metric then prints to stdout all the same (it does not look at the setting). Lambda's process would have
    flushed them: forget them here."""
    if is_metrics_disabled():
        from xero_sync.observability import metrics

        metrics.clear_metrics()


# Powertools' API resolvers keep the current event on their base class (BaseRouter.current_event), not on the
# instance: harmless in Lambda, which runs one invocation per process, but two HTTP invocations on two threads here
# would read each other's event (another caller's practice, headers, body). So HTTP invocations take turns.
_HTTP_INVOCATIONS = threading.Lock()


def _is_http_api_event(event: Any) -> bool:
    return isinstance(event, dict) and "requestContext" in event and "routeKey" in event


class Functions:
    """Every function of the template by logical id."""

    def __init__(self, functions: Mapping[str, Function], physical_names: Mapping[str, str], max_environments: int):
        self.runtimes = {
            logical_id: FunctionRuntime(function, physical_names[logical_id], max_environments)
            for logical_id, function in functions.items()
        }

    def invoke(self, logical_id: str, event: Any) -> Any:
        if _is_http_api_event(event):
            with _HTTP_INVOCATIONS:
                return self.runtimes[logical_id].invoke(event)
        return self.runtimes[logical_id].invoke(event)

    def warm(self) -> None:
        for runtime in self.runtimes.values():
            runtime.warm()

    def expire_invocations(self) -> None:
        for runtime in self.runtimes.values():
            runtime.expire_invocations()
