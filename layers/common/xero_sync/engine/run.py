"""The sync engine: imports one Xero organisation into DynamoDB, all of it the first time, then what changed.

It walks every resource of the catalogue (catalogue.py: what each is and how Xero pages it; the engine names none),
up to `workers` at once (Xero's in-flight limit per organisation, also enforced by the client), the longest first
(`read_order`), each in one pass (plan.py: which; pages.py: how its pages are read; passes.py: storing, checkpoints
and the sweep), then re-reads the contacts changed documents may have flipped. What an error does to a pass and to
the run is one table (outcomes.py).

Each record is stored as Xero sent it. Copies of other records inside it (a document's contact, a payment's invoice's
contact, a contact's groups, a group's members) are resolved when read (rendering.py), so a renamed contact or a
deleted group costs no read here.
"""

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from xero_sync.catalogue import CATALOGUE, Paging, ResourceSpec
from xero_sync.engine.context import CheckpointStore, Context, EngineHooks, EngineOptions, options_from_settings
from xero_sync.engine.outcomes import OnResource, Outcome, OutcomeKind, RunTotals, rule_for, run_outcome
from xero_sync.engine.passes import Passes, clear_pass
from xero_sync.models import PassCheckpoint
from xero_sync.observability import logger
from xero_sync.record_store import RecordStore
from xero_sync.schemas import RunProgress, RunWait, SyncMode
from xero_sync.xero_api import XeroApi, XeroApiError


class SyncEngine:
    def __init__(
        self,
        client_id: str,
        api: XeroApi,
        store: RecordStore | None = None,
        mode: SyncMode = "incremental",
        run_id: str | None = None,
        options: EngineOptions | None = None,
        remaining_seconds: Callable[[], float] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        hooks: EngineHooks | None = None,
    ) -> None:
        self.client_id = client_id
        self.api = api
        self.mode = mode
        self.options = options or options_from_settings()
        self.clock = clock
        self.hooks = hooks or EngineHooks()
        self.ctx = Context(
            client_id=client_id,
            api=api,
            store=store or RecordStore(client_id),
            checkpoints=CheckpointStore(client_id, run_id, clock, self.hooks),
            mode=mode,
            options=self.options,
            clock=clock,
            remaining_seconds=remaining_seconds,
            hooks=self.hooks,
        )
        self.passes = Passes(self.ctx)
        self._resources_done = 0  # in this run, earlier invocations included

    @property
    def totals(self) -> RunTotals:
        return self.ctx.totals

    def run(self) -> Outcome:
        checkpoints = self.ctx.checkpoints
        todo = []
        order = sorted(CATALOGUE, key=lambda s: s.read_order)
        loaded = checkpoints.load_all(spec.name for spec in order)  # each pass reads its own again as it starts
        for spec in order:
            cp = loaded[spec.name]
            if checkpoints.done_in_this_run(cp):  # by an earlier invocation of this run (a continuation)
                if spec.contact_list and cp.last_pass_whole:
                    self.ctx.contacts_read_from = cp.last_pass_began
                self._resources_done += 1
                continue
            if cp.unavailable_since is not None and not self._retry_unavailable(cp):
                self.totals.unavailable.add(spec.name)  # not offered: asked again at the next reconciliation
                self._resources_done += 1
                continue
            todo.append(spec)
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="sync") as pool:
            futures: list[Future[None]] = [pool.submit(self._resource, spec) for spec in todo]
            for future in futures:
                error = future.exception()
                if error is not None:
                    errors.append(error)
        outcome = run_outcome(errors, self.clock(), self.options.offline_retry_seconds) if errors else None
        if outcome is not None:
            return outcome
        try:
            self.passes.follow_up()
        except BaseException as error:
            outcome = run_outcome([error], self.clock(), self.options.offline_retry_seconds)
            if outcome is not None:
                return outcome
            raise
        if self.totals.failed:
            failed = sorted(self.totals.failed)
            return Outcome(OutcomeKind.PARTIAL, error_code=self.totals.failed[failed[0]], failed_resources=failed)
        return Outcome(OutcomeKind.DONE)

    def progress(self, records_before: int = 0) -> RunProgress:
        """How far this run is (for the run's heartbeat): resources done of all, records read, what it waits on."""
        with self.totals.lock:
            records = records_before + sum(c.fetched for c in self.totals.counts.values())
            done = self._resources_done
        wait = self.api.waiting()
        return RunProgress(
            resources_done=done,
            resources_total=len(CATALOGUE),
            records_so_far=records,
            waiting_on=RunWait(reason=wait[0], until=wait[1]) if wait else None,
            published_at=self.clock(),
        )

    def _resource(self, spec: ResourceSpec) -> None:
        """One resource's pass; what an error does to it is outcomes.RULES."""
        try:
            self.hooks.before_pass(spec.name)
            if spec.paging is Paging.OFFSET:
                self.passes.by_offset(spec)
            else:
                self.passes.by_date(spec)
            self.hooks.after_pass(spec.name)
            with self.totals.lock:
                self._resources_done += 1
        except BaseException as error:
            effect = rule_for(error).on_resource
            if effect is OnResource.UNAVAILABLE:
                self._mark_unavailable(spec, error)
            elif effect is OnResource.NOT_ENTITLED and spec.entitlement_gated:
                # Xero gates it by plan: a 401 with a token that works everywhere else means "not entitled".
                logger.info(
                    "resource not entitled for this organisation", extra={"resource": spec.name, "detail": str(error)}
                )
                with self.totals.lock:
                    self.totals.not_entitled.add(spec.name)
                    self._resources_done += 1
            elif effect is OnResource.FAILED and isinstance(error, XeroApiError):
                # This resource alone failed (its answers kept failing, or were unusable): the others are imported
                # and checkpointed, the run ends partial, and this one keeps its checkpoint for the next run.
                logger.warning(
                    "a resource failed", extra={"resource": spec.name, "code": error.code, "detail": str(error)}
                )
                with self.totals.lock:
                    self.totals.failed[spec.name] = error.code
            else:
                if effect is OnResource.STOP_ALL:
                    self.api.stop.set()  # nobody else should start another call
                raise

    def _retry_unavailable(self, cp: PassCheckpoint) -> bool:
        """A resource Xero did not offer is asked again by the next run (one 404 may be Xero's passing fault), then,
        once that run found it so too, by a full sync or once a reconciliation is due."""
        assert cp.unavailable_since is not None
        return (
            not cp.unavailable_confirmed
            or self.mode == "full"
            or cp.unavailable_since < self.clock() - self.options.full_interval
        )

    def _mark_unavailable(self, spec: ResourceSpec, error: BaseException) -> None:
        logger.info("resource not offered to this organisation", extra={"resource": spec.name, "detail": str(error)})
        checkpoints = self.ctx.checkpoints
        cp = checkpoints.load(spec.name)
        since = cp.unavailable_since or self.clock()
        confirmed = cp.unavailable_confirmed or (cp.unavailable_since is not None and cp.run_id != checkpoints.run_id)
        clear_pass(cp)  # a pass Xero stopped offering part-way is abandoned: the next one starts afresh
        cp.unavailable_since, cp.unavailable_confirmed = since, confirmed or None
        self.ctx.checkpoints.save(cp)
        with self.totals.lock:
            self.totals.unavailable.add(spec.name)
            self._resources_done += 1
