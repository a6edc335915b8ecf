"""The one scheduler: drives any adapter against any executor, by the adapter's mode.

- `generational` (the paper's): ask the adapter for a generation, submit all of it (the
  executor hands models to free slots first-in first-out), wait for the whole
  generation, then `tell`. Proposals do not depend on completion order, so a search is
  reproducible whatever the number of workers.
- `steady_state`: keep every slot busy; the moment a model finishes (including when the
  engine stops it early) its result is told and the adapter is asked for one more.

An executor runs models: the plain runner's in-process one (`a4nn.search`), Prefect task
runs on Dask (`flows.search_flow`), or anything with `slots`, `submit(cand, prior_ids)`
and `next_result() -> (cand, result)`. The session (`a4nn.search.SearchSession`) owns the
run directory: it records each result and persists the adapter's state after each
generational `tell`; in steady state once per finished model, after the tell and the ask
that refills its slot, with the candidates then in flight (and those told since the last
save), so a killed run resumes them (a generational adapter re-proposes its generation
instead).

An adapter that proposes nothing while nothing is in flight and is not done would end
the search early without a word: that is a `SchedulerError` naming the adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from a4nn.types import Candidate, Result

ResultHook = Callable[[Candidate, Result], None]


class SchedulerError(RuntimeError):
    """The adapter broke the ask/tell contract (the message names it and what it did)."""


class Executor(Protocol):
    """Runs models; `slots` of them at once."""

    slots: int

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None: ...

    def next_result(self) -> tuple[Candidate, Result]: ...


def prior_for_batch(finished: list[int], batch: list[Candidate]) -> list[int]:
    """The finished models a generational batch's engines learn from, in proposal order
    (model id), so that it does not matter which model of a generation finished first.
    Models of the batch itself are left out: a resumed batch may be partly finished."""
    members = {c.model_id for c in batch}
    return sorted(m for m in finished if m not in members)


def _stalled(adapter: Any) -> SchedulerError:
    return SchedulerError(
        f"adapter {adapter.name!r} proposed no candidate while none was in training and it "
        "is not done (done() is False): the search cannot go on. This is a bug in the "
        "adapter: ask() must propose while nothing is in flight until its budget is told"
    )


def run_schedule(
    session: Any,
    executor: Executor,
    on_result: ResultHook | None = None,
    resume_inflight: list[Candidate] | None = None,
) -> None:
    """Run the search to the end in the adapter's declared mode."""
    mode = session.adapter.mode
    if mode == "generational":
        run_generational(session, executor, on_result)
    elif mode == "steady_state":
        run_steady_state(session, executor, on_result, resume_inflight)
    else:
        raise SchedulerError(
            f"adapter {session.adapter.name!r} declares mode {mode!r}; "
            "expected 'generational' or 'steady_state'"
        )
    retrain_unfinished(session, executor, on_result)


def retrain_unfinished(
    session: Any, executor: Executor, on_result: ResultHook | None = None
) -> None:
    """Train the models the run holds without a result that the adapter will not propose
    again (it was told of them before their record was lost), so that a finished run's
    tables hold every model it proposed. Their results are recorded, not told again."""
    todo = session.unfinished()
    for cand in todo:
        executor.submit(cand, list(session.order))
    for _ in todo:
        cand, res = executor.next_result()
        session.record(res)
        if on_result is not None:
            on_result(cand, res)


def run_generational(session: Any, executor: Executor, on_result: ResultHook | None = None) -> None:
    """The paper's schedule: one generation at a time, a barrier before `tell`."""
    adapter = session.adapter
    while not adapter.done():
        cands = adapter.ask()
        if not cands:
            raise _stalled(adapter)
        todo = session.pending(cands)
        prior = prior_for_batch(session.order, cands)
        for cand in todo:
            executor.submit(cand, prior)
        for _ in todo:
            cand, res = executor.next_result()
            session.record(res)
            if on_result is not None:
                on_result(cand, res)
        session.tell(cands)


def run_steady_state(
    session: Any,
    executor: Executor,
    on_result: ResultHook | None = None,
    resume_inflight: list[Candidate] | None = None,
) -> None:
    """Asynchronous schedule: refill a slot as soon as it frees up.

    `resume_inflight` are candidates a killed run had asked for but not told: finished
    ones are told at once, the rest resubmitted.
    """
    adapter = session.adapter
    inflight: dict[int, Candidate] = {}
    told: list[Candidate] = []  # told, not yet in a saved state: listed in flight until then
    for cand in resume_inflight or []:
        if cand.model_id in session.done_results:
            session.tell([cand])
        else:
            inflight[cand.model_id] = cand
            executor.submit(cand, list(session.order))
    while True:
        while len(inflight) < executor.slots and not adapter.done():
            asked = adapter.ask(1)
            if not asked:
                break  # the adapter waits for results (or has nothing left)
            new = [c for c in asked if c.model_id not in inflight]  # re-proposed on resume
            if not new:
                continue
            inflight.update((c.model_id, c) for c in new)
            session.save_inflight(told + list(inflight.values()))  # one state save per ask
            told = []
            for cand in new:
                if cand.model_id in session.done_results:  # finished before a kill
                    del inflight[cand.model_id]
                    session.tell([cand])
                else:
                    executor.submit(cand, list(session.order))
        if told:  # nothing asked since the last tell: save the state that told it
            session.save_inflight(told + list(inflight.values()))
            told = []
        if not inflight:
            if not adapter.done():
                raise _stalled(adapter)
            session.save_inflight([], state=False)  # every tell is in the saved state
            break
        cand, res = executor.next_result()
        inflight.pop(cand.model_id, None)
        session.record(res)
        if on_result is not None:
            on_result(cand, res)
        session.tell([cand], save=False)  # saved with the next ask's in-flight list
        told.append(cand)


@dataclass
class MemorySession:
    """A session that keeps results in memory only (no run directory): what the scheduler
    needs to drive an adapter in a benchmark or a test. Not resumable."""

    adapter: Any
    done_results: dict[int, Result] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)

    def pending(self, cands: list[Candidate]) -> list[Candidate]:
        return [c for c in cands if c.model_id not in self.done_results]

    def record(self, res: Result) -> None:
        self.done_results[res.model_id] = res
        self.order.append(res.model_id)

    def tell(self, cands: list[Candidate], save: bool = True) -> None:
        self.adapter.tell([self.done_results[c.model_id] for c in cands])

    def save_inflight(self, cands: list[Candidate], state: bool = True) -> None:
        """Nothing to persist."""

    def unfinished(self) -> list[Candidate]:
        return []
