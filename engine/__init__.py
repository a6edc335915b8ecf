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

import importlib

from .config import PRESETS, EngineConfig, EngineConfigError, preset
from .engine import Decision, Engine, Tracker

# The replay tool (and scipy.stats, which its metrics need) loads on first use: a training
# loop that only imports Engine pays for numpy and the engine, not for them.
_REPLAY_NAMES = (
    "CurveFormatError",
    "format_report",
    "read_curves",
    "replay",
    "replay_file",
    "to_json",
)


def __getattr__(name: str) -> object:
    if name not in _REPLAY_NAMES:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module = importlib.import_module(".replay", __name__)
    # importing the submodule bound `engine.replay` to the module: rebind the names
    # (`replay` is the function, as it was with an eager import)
    globals().update({n: getattr(module, n) for n in _REPLAY_NAMES})
    return globals()[name]


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
