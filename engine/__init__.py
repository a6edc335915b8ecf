"""A4NN's prediction engine: fit learning curves, predict the final fitness, stop early.

Uses numpy and scipy only, so any training loop can call it:

    from engine import Engine
    eng = Engine.from_preset("paper")      # or "default", "off"
    tr = eng.start("model-1")
    for epoch in range(25):
        acc = train_and_validate()         # your code
        if tr.observe(epoch, acc).converged:
            break
    fitness = tr.fitness()
    eng.finish(tr)
"""

from .config import PRESETS, EngineConfig, EngineConfigError, preset
from .engine import Decision, Engine, Tracker
from .replay import CurveFormatError, format_report, read_curves, replay, replay_file, to_json

__all__ = [
    "PRESETS",
    "CurveFormatError",
    "Decision",
    "Engine",
    "EngineConfig",
    "EngineConfigError",
    "Tracker",
    "format_report",
    "preset",
    "read_curves",
    "replay",
    "replay_file",
    "to_json",
]
