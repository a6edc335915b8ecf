"""The A4NN paper's predictor: F(x) = a - b^(c - x) fitted to the raw curve, predicted at
the target epoch. It learns nothing across models."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import EngineConfig
from .fitting import fit_paper
from .prediction import Prediction


class PaperPredictor:
    """One fit of the paper's family per epoch; a failed fit is a failed prediction (+inf)."""

    def __init__(self, cfg: EngineConfig):
        self.target_x = cfg.target_x

    def predict(self, state: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Prediction:
        """The paper's prediction of the fitness at `target_x` (no scratch state needed)."""
        fit = fit_paper(x, y, self.target_x)
        if not fit.ok:
            return Prediction(float("inf"), family="paper", note=fit.note)
        return Prediction(
            fit.prediction,
            params=fit.params_dict(("a", "b", "c")),
            family="paper",
            source="paper",
        )

    def learn_curve(
        self,
        x: np.ndarray,
        y: np.ndarray,
        stopped: bool,
        log: list | None = None,
        features: np.ndarray | None = None,
    ) -> None:
        """Nothing to learn: the paper's engine treats every model on its own."""
