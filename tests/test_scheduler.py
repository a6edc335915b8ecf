"""The one scheduler (a4nn/scheduler.py): generational and steady state; the progress board.

The executor here runs models on a thread pool (durations in milliseconds), so the
tests check the schedules' real ordering: the generational barrier, slots kept full in
async mode, and the resume of in-flight candidates.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from a4nn.scheduler import SchedulerError, run_generational, run_schedule, run_steady_state
from a4nn.types import Candidate, Result
from benchmarks.scheduling.simulate import ReplayAdapter, ReplaySession, read_epoch_times
from flows.progress import ProgressBoard


class ThreadExecutor:
    """`slots` threads; model i 'trains' for durations[i] seconds."""

    def __init__(self, slots: int, durations: list[float]):
        self.slots, self.durations = slots, durations
        self.pool = ThreadPoolExecutor(slots)
        self.q: queue.Queue = queue.Queue()
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()
        self.log: list[tuple[str, int]] = []

    def submit(self, cand: Candidate, prior_ids: list[int]) -> None:
        self.log.append(("submit", cand.model_id))

        def work() -> None:
            with self.lock:
                self.running += 1
                self.max_running = max(self.max_running, self.running)
            time.sleep(self.durations[cand.model_id])
            with self.lock:
                self.running -= 1
            self.q.put(cand)

        self.pool.submit(work)

    def next_result(self) -> tuple[Candidate, Result]:
        cand = self.q.get()
        self.log.append(("result", cand.model_id))
        return cand, Result(cand.model_id, float(cand.model_id), 1.0, 10, 3)


class TellLog(ReplaySession):
    """Remembers when each tell happened relative to the results."""

    def __init__(self, adapter):
        super().__init__(adapter)
        self.tells: list[list[int]] = []
        self.saved_inflight: list[list[int]] = []

    def tell(self, cands, save=True):
        self.tells.append([c.model_id for c in cands])
        super().tell(cands, save)

    def save_inflight(self, cands, state=True):
        self.saved_inflight.append(sorted(c.model_id for c in cands))


def test_generational_barrier_and_fifo():
    session = TellLog(ReplayAdapter(n_models=8, pop=4, offspring=2))
    ex = ThreadExecutor(3, [0.01] * 8)
    run_generational(session, ex)
    assert session.tells == [[0, 1, 2, 3], [4, 5], [6, 7]]
    # nothing of generation 2 is submitted before generation 1's last result
    first_submit_gen2 = ex.log.index(("submit", 4))
    results_gen1 = [ex.log.index(("result", i)) for i in range(4)]
    assert max(results_gen1) < first_submit_gen2
    assert ex.max_running <= 3


def test_generational_resume_skips_finished_models():
    session = TellLog(ReplayAdapter(n_models=4, pop=4))
    session.done_results[1] = Result(1, 50.0, 1.0, 10, 3)
    ex = ThreadExecutor(2, [0.0] * 4)
    run_generational(session, ex)
    assert ("submit", 1) not in ex.log
    assert session.tells == [[0, 1, 2, 3]]


def test_steady_state_keeps_every_slot_busy():
    durations = [0.05, 0.3, 0.3, 0.05, 0.05, 0.05, 0.05, 0.05]
    session = TellLog(ReplayAdapter(n_models=8, pop=2, offspring=2))
    ex = ThreadExecutor(3, durations)
    run_steady_state(session, ex)
    assert sorted(session.order) == list(range(8))
    assert all(len(t) == 1 for t in session.tells)  # one result told at a time
    # model 3 starts as soon as model 0 finishes, while 1 and 2 still run
    assert ex.log.index(("submit", 3)) < ex.log.index(("result", 1))
    assert ex.max_running == 3
    assert session.saved_inflight[-1] == []


def test_steady_state_resumes_inflight_candidates():
    session = TellLog(ReplayAdapter(n_models=5, pop=1, offspring=1))
    session.adapter.next_id = 3  # 0..2 were asked before the flow was killed
    session.done_results[0] = Result(0, 1.0, 1.0, 1, 1)  # finished, never told
    session.order.append(0)
    inflight = [Candidate(0, "replay", 0), Candidate(2, "replay", 2)]
    ex = ThreadExecutor(2, [0.01] * 5)
    run_steady_state(session, ex, resume_inflight=inflight)
    assert session.tells[0] == [0]  # told at once, not retrained
    assert ("submit", 0) not in ex.log and ("submit", 2) in ex.log
    assert sorted(session.order) == [0, 2, 3, 4]


def test_replay_reads_commons_and_run_epoch_times(tmp_path):
    commons = tmp_path / "c.csv"
    commons.write_text("epoch,val_accs,epoch_times\n0,1,10\n1,2,5\n0,1,7\n")
    assert read_epoch_times(commons) == [[10.0, 5.0], [7.0]]
    ours = tmp_path / "run"
    ours.mkdir()
    (ours / "epochs.csv").write_text("model_id,epoch,epoch_seconds\n3,0,1.5\n3,1,2\n4,0,3\n")
    assert read_epoch_times(ours) == [[1.5, 2.0], [3.0]]


def test_progress_board_counts_and_slots():
    out = io.StringIO()
    board = ProgressBoard(epochs_budget=10, total_models=4, stream=out, live=False)
    c0, c1 = Candidate(0, "replay", 0), Candidate(1, "replay", 1)
    board.on_submit(c0)
    board.on_submit(c1)
    board.on_submit(Candidate(2, "replay", 2))
    assert "running 0, queued 3" in board.headline()  # submitted is not running
    board.on_event((0.0, {"kind": "start", "model_id": 0, "worker": "w0", "gpu": "0"}))
    board.on_event(
        {
            "kind": "epoch",
            "model_id": 0,
            "worker": "w0",
            "gpu": "0",
            "epoch": 4,
            "val_acc": 81.5,
            "prediction": 90.25,
        }
    )
    board.on_event({"kind": "start", "model_id": 1, "worker": "w1", "gpu": "1"})
    from rich.console import Console

    con = Console(file=io.StringIO(), width=120)
    con.print(board.render())
    text = con.file.getvalue()
    assert "running 2, queued 1" in text and "5/10" in text and "81.50" in text and "90.25" in text
    board.on_result(c0, Result(0, 90.25, 1.0, 10, 5, status="converged", best_val_acc=82.0))
    board.on_result(c1, Result(1, 0.0, 1.0, 10, 2, status="failed", reason="NaN loss"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "FAILED (NaN loss)" in lines[1]
    assert "models done 2/4 (1 failed), running 0, queued 1" in lines[1]
    # the failed model counts the 2 epochs it trained, not its budget: not the engine's savings
    assert "epochs 7/12 of budget (42% saved)" in lines[1]
    assert "best 82.00% (model 0)" in lines[1]
    assert board.slots["w0"].model_id is None  # slot freed


class StuckAdapter(ReplayAdapter):
    """Proposes its first generation, then nothing, although it is not done."""

    def ask(self, n=None):
        return super().ask(n) if self.next_id == 0 else []

    def done(self) -> bool:
        return False


@pytest.mark.parametrize("mode", ["generational", "steady_state"])
def test_an_adapter_that_stalls_is_an_error_naming_it(mode):
    session = TellLog(StuckAdapter(n_models=4, pop=2, offspring=2, mode=mode, name="stuck"))
    with pytest.raises(SchedulerError, match="adapter 'stuck' proposed no candidate"):
        run_schedule(session, ThreadExecutor(2, [0.0] * 4))
    proposed = [0, 1] if mode == "generational" else [0]  # ask() vs ask(1)
    assert sorted(session.order) == proposed  # what it proposed was trained and recorded


def test_the_adapter_declares_the_schedule():
    steady = TellLog(ReplayAdapter(n_models=4, pop=2, offspring=2, mode="steady_state"))
    run_schedule(steady, ThreadExecutor(2, [0.0] * 4))
    assert all(len(t) == 1 for t in steady.tells)
    gen = TellLog(ReplayAdapter(n_models=4, pop=2, offspring=2))
    run_schedule(gen, ThreadExecutor(2, [0.0] * 4))
    assert gen.tells == [[0, 1], [2, 3]]
    with pytest.raises(SchedulerError, match="declares mode 'async'"):
        run_schedule(TellLog(ReplayAdapter(n_models=1, mode="async")), ThreadExecutor(1, [0.0]))
