"""The local runtime invokes handlers in one long-lived process, where Lambda would give each its own."""

from types import SimpleNamespace

from local.stack import lambda_runtime as runtime
from xero_sync.observability import metrics


def test_metrics_of_local_invocations_do_not_pile_up_when_metrics_are_disabled(monkeypatch, capsys):
    # Given metrics disabled (the local stack's default) and a function that adds a metric each invocation, then
    # flushes as @metrics.log_metrics does
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    def handler(event, context):
        metrics.add_metric(name="Invoked", unit="Count", value=1)
        metrics.flush_metrics()

    monkeypatch.setattr(runtime, "load_handler", lambda function, instance: handler)
    function = runtime.FunctionRuntime(SimpleNamespace(timeout=3, memory_mb=128), "local-function")  # type: ignore[arg-type]
    # When it is invoked more times than Powertools keeps values of one metric
    for _ in range(150):
        function.invoke({})
    # Then nothing is left over and nothing was printed (Powertools prints a metric at 100 values, setting or not)
    assert metrics.metric_set == {}
    assert '"_aws"' not in capsys.readouterr().out


def test_an_invocation_begun_once_the_stack_is_stopping_has_no_time_left(monkeypatch):
    # Given a function with a long timeout (the sync's), invoked once while the stack runs
    remaining = []
    monkeypatch.setattr(
        runtime,
        "load_handler",
        lambda function, instance: lambda e, context: remaining.append(context.get_remaining_time_in_millis()),
    )
    function = runtime.FunctionRuntime(SimpleNamespace(timeout=900, memory_mb=128), "local-sync")  # type: ignore[arg-type]
    function.invoke({})
    # When the stack stops (the invocations under way expire) and a batch received just before is invoked after
    function.expire_invocations()
    function.invoke({})
    # Then that invocation has no time left either (it hands over at once instead of outliving the stack's engines)
    assert remaining[0] > 890_000
    assert remaining[1] == 0
