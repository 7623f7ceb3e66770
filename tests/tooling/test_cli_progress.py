"""The CLI's progress display: live bars on a terminal, plain lines elsewhere, from a run's progress."""

import io

from rich.console import Console

from local.cli.progress import RESOURCES, BarRenderer, LineRenderer, ResourceProgress, RunProgress, renderer_for


def a_run_in_progress() -> RunProgress:
    resources = {name: ResourceProgress(name) for name in RESOURCES}
    resources["Invoices"] = ResourceProgress("Invoices", state="reading", records=2000, pages=2, total=5000)
    resources["Contacts"] = ResourceProgress("Contacts", state="done", records=300, pages=1, total=300, counted=True)
    resources["Items"] = ResourceProgress("Items", state="done", pages=1)  # done, its figures not recorded yet
    run = {"status": "running", "waitedSeconds": 4.5}
    waiting = {"reason": "rate_limit", "until": "2026-12-02T03:04:05+00:00"}
    return RunProgress(run, resources, api_calls=17, rate_limited=1, elapsed=12.0, waiting_on=waiting)


def test_on_a_terminal_each_resource_gets_a_live_bar_under_the_runs_state():
    # Given a terminal
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120, color_system=None)
    renderer = renderer_for(terminal)
    assert isinstance(renderer, BarRenderer)
    # When a run's progress is drawn
    renderer.start("Initial sync")
    renderer.update(a_run_in_progress())
    renderer.stop(None)
    # Then every resource has its bar with records done of total and calls, and the header says what it waits on
    drawn = screen.getvalue()
    for name in RESOURCES:
        assert name in drawn
    assert "2000/5000" in drawn and "300/300" in drawn and "✔" in drawn and "━" in drawn
    assert "run running" in drawn and "API calls 17" in drawn and "429s 1" in drawn
    assert "waiting on Xero's minute limit until 03:04:05 UTC" in drawn


def test_off_a_terminal_it_prints_plain_lines_without_bars_or_colour():
    out = io.StringIO()
    renderer = renderer_for(Console(file=io.StringIO(), force_terminal=False), out)
    assert isinstance(renderer, LineRenderer)
    renderer.start("Initial sync")
    renderer.update(a_run_in_progress())
    renderer.stop(a_run_in_progress())
    lines = out.getvalue().splitlines()
    assert lines[0] == "Initial sync"
    assert any(line.split() == ["Contacts", "300", "fetched", "1", "call"] for line in lines)  # recorded ones, once
    assert sum("Contacts" in line for line in lines) == 1 and not any("Invoices" in line for line in lines)
    assert not any("Items" in line for line in lines)  # done, but not "0 records": its figures are not recorded yet
    assert "waiting on Xero's minute limit" in lines[-1]
    assert "\x1b[" not in out.getvalue() and "━" not in out.getvalue()


def test_off_a_terminal_a_resource_done_before_its_figures_are_recorded_is_printed_with_the_recorded_figures():
    # Given a resource the run has finished but whose figures the worker has not recorded yet
    out = io.StringIO()
    renderer = LineRenderer(out)
    renderer.start("run r1 (manual, incremental)")
    running = a_run_in_progress()
    renderer.update(running)
    # When the run ends and records them
    ended = a_run_in_progress()
    ended.run = {"status": "succeeded", "apiCalls": 25, "rateLimited": 0, "waitedSeconds": 1.3}
    ended.api_calls, ended.rate_limited, ended.waiting_on = 25, 0, None  # as the reader takes them from the run
    ended.resources["Items"] = ResourceProgress("Items", state="done", records=5, pages=1, counted=True)
    ended.resources["Invoices"] = ResourceProgress("Invoices", state="done", pages=2)  # never recorded
    renderer.stop(ended)
    # Then its line has the recorded figure, one not read says so, and the run's state is the run's record
    lines = out.getvalue().splitlines()
    assert [line.split() for line in lines if "Items" in line] == [["Items", "5", "fetched", "1", "call"]]
    assert [line.split()[:2] for line in lines if "Invoices" in line] == [["Invoices", "-"]]
    assert lines[-1].strip().startswith("run succeeded · API calls 25 · 429s 0 · waited 1.3 s")
