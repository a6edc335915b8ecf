"""NSGA-Net's settings, its named presets and the options a run config gives it.

`paper` is the A4NN paper's search (ICPP'23 Table 2): 10 + 10 * 9 = 100 models;
`quickstart` the README's: 6 + 4 * 2 = 14. In a run config:

    search:
      adapter: nsganet
      options: {preset: paper, pop_size: 20}    # a preset, then any setting overridden

The space's settings (phases, nodes, channels) are the space's options, not these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["generational", "steady_state"]
Tournament = Literal["dom_and_crowding", "rank_and_crowding"]


@dataclass(frozen=True)
class NSGANetSettings:
    """All knobs of the NSGA-Net adapter.

    `n_generations` counts the initial population as generation 1 (pymoo's `n_gen`, as
    NSGA-Net's termination ("n_gen", 10) did), so the budget is
    pop_size + n_offspring * (n_generations - 1) models: 10 + 10 * 9 = 100 for `paper`.
    `mode`: `generational` (the paper) or `steady_state` (a child whenever a worker frees).
    """

    pop_size: int = 10
    n_offspring: int = 10
    n_generations: int = 10
    mode: Mode = "generational"
    crossover_prob: float = 0.9  # pymoo's default, as NSGA-Net's PointCrossover
    mutation_prob: float | None = None  # per position; None: 1 / n (pymoo's default)
    tournament: Tournament = "dom_and_crowding"  # NSGA-Net's tournament type
    max_breed_tries: int = 100  # rounds of mating before filling with random genomes

    @property
    def budget(self) -> int:
        """Models proposed in all."""
        return self.pop_size + self.n_offspring * (self.n_generations - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> NSGANetSettings:
        """A copy with `overrides`, each checked; unknown names are an error listing the known."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown NSGA-Net setting(s) {unknown}; known settings: {sorted(known)}"
            )
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
        need(
            self.mode in ("generational", "steady_state"),
            "mode",
            "must be 'generational' or 'steady_state'",
        )
        need(0.0 <= self.crossover_prob <= 1.0, "crossover_prob", "must be in [0, 1]")
        need(
            self.mutation_prob is None or 0.0 < self.mutation_prob <= 1.0,
            "mutation_prob",
            "must be None (1/n) or in (0, 1]",
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


PRESETS: dict[str, NSGANetSettings] = {
    # Channing et al. ICPP'23 Table 2
    "paper": NSGANetSettings(),
    # README quickstart (2 CPU cores): 6 + 4 * 2 = 14 models
    "quickstart": NSGANetSettings(pop_size=6, n_offspring=4, n_generations=3),
}


def get_preset(name: str | None) -> NSGANetSettings:
    """The named preset (None: `paper`); an unknown name lists the known ones."""
    key = "paper" if name is None else name
    if key not in PRESETS:
        raise ValueError(f"unknown NSGA-Net preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key]


class NSGANetOptions(BaseModel):
    """`search.options` of the nsganet adapter: a preset, then settings that override it."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["paper", "quickstart"] = "paper"
    pop_size: int | None = Field(None, ge=2)
    n_offspring: int | None = Field(None, ge=1)
    n_generations: int | None = Field(None, ge=1)
    mode: Mode | None = None
    crossover_prob: float | None = Field(None, ge=0.0, le=1.0)
    mutation_prob: float | None = Field(None, gt=0.0, le=1.0)
    tournament: Tournament | None = None
    max_breed_tries: int | None = Field(None, ge=1)

    def settings(self) -> NSGANetSettings:
        overrides = self.model_dump(exclude={"preset"}, exclude_none=True)
        return get_preset(self.preset).with_overrides(**overrides)
