"""The two schedules, independent of what executes a model (Prefect on Dask, or a replay).

- `generational` (the paper's): ask the adapter for a generation, submit all of it
  (the Dask scheduler hands models to free GPU slots first-in first-out), wait for the
  whole generation, then `tell`. GPUs idle at the barrier when the generation does not
  divide evenly over the slots or its models differ in length.
- `steady_state` (`mode: async`): keep every slot busy; the moment a model finishes
  (including when the engine stops it early) its result is told to the adapter and the
  adapter is asked for one more candidate.

Both drive a *session* (`a4nn.search.SearchSession` or anything with the same methods:
`adapter`, `done_results`, `order`, `pending`, `record`, `tell`) and an *executor*
(`submit(cand, prior_ids)`, `next_result() -> (cand, result)`, `slots`). A session that
also has `save_inflight(cands)` gets its in-flight candidates persisted after every ask,
so a killed flow resumes them (see `search_flow`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from a4nn.engine_feed import prior_for_batch
from a4nn.types import Candidate, Result

ResultHook = Callable[[Candidate, Result], None]


class Executor(Protocol):
    slots: int

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None: ...

    def next_result(self) -> tuple[Candidate, Result]: ...


def _persist_inflight(session: Any, inflight: dict[int, Candidate]) -> None:
    save = getattr(session, "save_inflight", None)
    if save is not None:
        save(list(inflight.values()))


def run_generational(session: Any, executor: Executor, on_result: ResultHook | None = None) -> None:
    """The paper's schedule: one generation at a time, a barrier before `tell`."""
    adapter = session.adapter
    while not adapter.done():
        cands = adapter.ask()
        if not cands:
            break
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

    The adapter must support `ask(1)` (one candidate, possibly none while it waits for
    results) and `tell` of single results. `resume_inflight` are candidates a killed
    flow had asked for but not told: finished ones are told at once, the rest resubmitted.
    """
    adapter = session.adapter
    inflight: dict[int, Candidate] = {}
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
            _persist_inflight(session, inflight)
            for cand in new:
                if cand.model_id in session.done_results:  # finished before a flow kill
                    del inflight[cand.model_id]
                    session.tell([cand])
                else:
                    executor.submit(cand, list(session.order))
        if not inflight:
            break
        cand, res = executor.next_result()
        inflight.pop(cand.model_id, None)
        session.record(res)
        if on_result is not None:
            on_result(cand, res)
        session.tell([cand])
        _persist_inflight(session, inflight)
