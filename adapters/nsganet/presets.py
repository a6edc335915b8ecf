"""Named NSGA-Net settings: `paper` (A4NN ICPP'23 Table 2) and `quickstart` (README run).

A preset holds the search knobs the adapter uses (population, offspring, generations,
space, operators) and the training-side values that go with them (epochs, channels),
which the run configuration reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Mode = Literal["generational", "steady_state"]
Tournament = Literal["dom_and_crowding", "rank_and_crowding"]


@dataclass(frozen=True)
class NSGANetSettings:
    """All knobs of the NSGA-Net adapter.

    `n_generations` counts the initial population as generation 1 (pymoo's `n_gen`, as
    NSGA-Net's termination ("n_gen", 10) did), so the budget is
    pop_size + n_offspring * (n_generations - 1) models: 10 + 10 * 9 = 100 for `paper`.
    """

    pop_size: int = 10
    n_offspring: int = 10
    n_generations: int = 10
    phases: int = 3
    nodes_per_phase: int = 4
    mode: Mode = "generational"
    crossover_prob: float = 0.9  # pymoo's default, as NSGA-Net's PointCrossover
    mutation_prob: float | None = None  # per bit; None: 1 / n_bits (pymoo's default)
    tournament: Tournament = "dom_and_crowding"  # NSGA-Net's tournament type
    max_breed_tries: int = 100  # rounds of mating before filling with random genomes
    # training-side values, read by the run configuration (not by the adapter)
    epochs: int = 25
    channels: tuple[int, ...] = (24, 48, 96)

    @property
    def budget(self) -> int:
        """Models proposed in all."""
        return self.pop_size + self.n_offspring * (self.n_generations - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    def with_overrides(self, **overrides: Any) -> NSGANetSettings:
        """A copy with `overrides`, each checked; unknown names are an error listing the known."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown NSGA-Net setting(s) {unknown}; known settings: {sorted(known)}"
            )
        if "channels" in overrides and not isinstance(overrides["channels"], int):
            overrides["channels"] = tuple(overrides["channels"])
        phases = overrides.get("phases", self.phases)
        keep_width = "channels" not in overrides and isinstance(self.channels, tuple)
        if keep_width and len(self.channels) != phases:
            overrides["channels"] = self.channels[0]  # the preset's base width, doubled per phase
        out = replace(self, **overrides)
        out.check()
        return out

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"NSGA-Net setting {name}={getattr(self, name)!r}: {what}")

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        need(is_int(self.pop_size) and self.pop_size >= 2, "pop_size", "must be an int >= 2")
        need(
            is_int(self.n_offspring) and self.n_offspring >= 1, "n_offspring", "must be an int >= 1"
        )
        need(
            is_int(self.n_generations) and self.n_generations >= 1,
            "n_generations",
            "must be an int >= 1 (the initial population is generation 1)",
        )
        need(is_int(self.phases) and self.phases >= 1, "phases", "must be an int >= 1")
        need(
            is_int(self.nodes_per_phase) and self.nodes_per_phase >= 2,
            "nodes_per_phase",
            "must be an int >= 2",
        )
        need(
            self.mode in ("generational", "steady_state"),
            "mode",
            "must be 'generational' or 'steady_state'",
        )
        need(0.0 <= self.crossover_prob <= 1.0, "crossover_prob", "must be in [0, 1]")
        need(
            self.mutation_prob is None or 0.0 < self.mutation_prob <= 1.0,
            "mutation_prob",
            "must be None (1/n_bits) or in (0, 1]",
        )
        need(
            self.tournament in ("dom_and_crowding", "rank_and_crowding"),
            "tournament",
            "must be 'dom_and_crowding' or 'rank_and_crowding'",
        )
        need(
            is_int(self.max_breed_tries) and self.max_breed_tries >= 1,
            "max_breed_tries",
            "must be an int >= 1",
        )
        need(is_int(self.epochs) and self.epochs >= 1, "epochs", "must be an int >= 1")
        need(
            (is_int(self.channels) and self.channels >= 1)
            or (
                isinstance(self.channels, tuple)
                and len(self.channels) == self.phases
                and all(is_int(c) and c >= 1 for c in self.channels)
            ),
            "channels",
            f"must be a positive int or {self.phases} positive ints (one per phase)",
        )


PRESETS: dict[str, NSGANetSettings] = {
    # Channing et al. ICPP'23 Table 2; channels 24/48/96 reproduce the commons' FLOPs.
    "paper": NSGANetSettings(),
    # README quickstart (2 CPU cores, <= 15 min with install): 6 + 4 * 2 = 14 models.
    "quickstart": NSGANetSettings(
        pop_size=6, n_offspring=4, n_generations=3, epochs=5, channels=(8, 16, 32)
    ),
}


def get_preset(name: str | None) -> NSGANetSettings:
    """The named preset (None: `paper`); an unknown name lists the known ones."""
    key = "paper" if name is None else name
    if key not in PRESETS:
        raise ValueError(f"unknown NSGA-Net preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key]
