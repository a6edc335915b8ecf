"""PPO over a space's choice vector, DeepHyper style (Balaprakash et al., SC'19, sections 3-4).

`search.adapter: ppo`. An agent generates an architecture as a sequence of actions, one
per position of the choice vector, from a policy network; a value network (the critic)
estimates the reward of each partial sequence. Both are single-layer LSTM(32)s
(`adapters.ppo.networks`); the policy's output layer starts near zero (OpenAI
Baselines' init_scale 0.01, as DeepHyper's PPO), so the first architectures are drawn
nearly uniformly. The reward of an architecture is the fitness handed back
(`Result.fitness`: the engine's converged prediction when a model was stopped early, or
the last validation accuracy; 0 for a failed model), times `reward_scale` (0.01: percent
to a fraction, DeepHyper's accuracy reward).

**Updates.** An agent generates architectures until M of them are new models
(`batch_size`; architectures it generated before join the batch on the way, see
**Cache**); once every reward of its batch is known it runs PPO on the batch: `epochs` (4) full-batch steps of Adam (`lr` 1e-3) on the
clipped surrogate (`clip` 0.2) plus `value_coef` times the critic's squared error minus
`entropy_coef` times the policy's entropy, gradients clipped to `max_grad_norm`. The
reward comes at the end of the sequence, undiscounted, so the advantage of step t is
R - V_old(a_<t), normalized over the batch.

**Agents.** `agents` (N) agents share one set of networks (the parameter server's); each
has its own cache of the architectures it has evaluated and its own batch:

- `update: sync` (A2C-like, the default): the adapter is `generational`. A generation is
  every agent's M new architectures; once all are told, each agent's PPO gradient is
  averaged (the loss is the mean of the agents' losses) and applied, `epochs` times.
  Proposals do not depend on the order in which models finish.
- `update: async` (A3C-like): the adapter is `steady_state`. Whenever a worker frees up,
  the next agent (round robin) that is not waiting proposes one architecture from the
  current weights; an agent whose M new architectures are all told applies its own PPO
  update to the shared weights at once, without waiting for the others. Its
  probabilities were those of the weights it sampled with, so PPO's ratio accounts for
  the staleness. Proposals depend on the order in which results arrive.

**Cache.** An architecture an agent has already generated is not trained again: the
episode enters the agent's batch with the reward of the agent's earlier model (when that
model is told), as DeepHyper's evaluation cache, and the agent generates another. A
cache hit costs no model of the budget and does not count towards M (DeepHyper's batch
of M could hold fewer evaluations; here every update learns from M trained models plus
the hits met on the way, so a policy that has settled on known architectures does not
spin through updates without training anything). After `max_cache_hits` hits in a row
the agent proposes a random architecture it has not generated (scored with the
policy's own probabilities), so a collapsed policy cannot stall the search. There is no
cache shared by agents (as in the paper).

**State.** The networks' weights and Adam's moments are numpy arrays in `state_dict()`
(the run directory keeps them in `adapter_state.npz`); every random draw comes from one
`numpy.random.Generator`, whose state is saved too; the networks are initialized under
`torch.manual_seed(seed)` in a forked RNG (the global torch RNG is left as it was). A
restored adapter proposes exactly what an uninterrupted one would, across updates.

Options (`search.options`):

    max_models: 100      # models proposed in all
    batch_size: 5        # M: new architectures per agent per update
    agents: 1            # N
    update: sync         # sync (A2C-like, generational) | async (A3C-like, steady_state)
    hidden: 32           # LSTM units of each network
    epochs: 4            # PPO optimisation epochs per batch
    clip: 0.2
    lr: 0.001
    value_coef: 0.5
    entropy_coef: 0.01
    max_grad_norm: 0.5
    reward_scale: 0.01
    max_cache_hits: 10

`Candidate.generation` is the number of PPO updates made before it was proposed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from a4nn.registry import validate_options
from a4nn.space import SearchSpace, vector_key
from a4nn.types import Candidate, Result
from adapters.base import AdapterError
from adapters.common import (
    FITNESS,
    Ledger,
    LedgerSearch,
    check_ask,
    reward,
    sample_unseen,
)
from adapters.ppo.networks import NumpyPolicy, PolicyNet, ValueNet, sequence_inputs

STATE_VERSION = 1


class PPOOptions(BaseModel):
    """`search.options` of the `ppo` adapter (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    max_models: int = Field(100, ge=1)
    batch_size: int = Field(5, ge=1)
    agents: int = Field(1, ge=1)
    update: Literal["sync", "async"] = "sync"
    hidden: int = Field(32, ge=1)
    epochs: int = Field(4, ge=1)
    clip: float = Field(0.2, gt=0.0, lt=1.0)
    lr: float = Field(1e-3, gt=0.0)
    value_coef: float = Field(0.5, ge=0.0)
    entropy_coef: float = Field(0.01, ge=0.0)
    max_grad_norm: float = Field(0.5, gt=0.0)
    reward_scale: float = Field(0.01, gt=0.0)
    max_cache_hits: int = Field(10, ge=1)


@dataclass
class Episode:
    """One generated architecture in an agent's batch."""

    actions: list[int]
    logp: list[float]  # log pi_old(a_t | a_<t) when it was generated
    source: int  # the model whose fitness is its reward
    new: bool  # False: a cache hit

    def to_dict(self) -> dict[str, Any]:
        return {"actions": self.actions, "logp": self.logp, "source": self.source, "new": self.new}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(
            [int(a) for a in d["actions"]],
            [float(x) for x in d["logp"]],
            int(d["source"]),
            bool(d["new"]),
        )


@dataclass
class Agent:
    cache: dict[str, int] = field(default_factory=dict)  # choice-vector key -> model id
    batch: list[Episode] = field(default_factory=list)
    closed: bool = False  # the batch waits for its rewards, then updates
    hits: int = 0  # cache hits in a row

    def to_dict(self) -> dict[str, Any]:
        """Without `cache`, which grows with the search: the adapter logs it
        (`agent_cache` in `PPOSearch.state_parts`)."""
        return {
            "batch": [e.to_dict() for e in self.batch],
            "closed": self.closed,
            "hits": self.hits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Agent:
        # a state saved before the caches were logged holds them here
        return cls(
            {str(k): int(v) for k, v in d.get("cache", {}).items()},
            [Episode.from_dict(e) for e in d["batch"]],
            bool(d["closed"]),
            int(d["hits"]),
        )


class PPOSearch(LedgerSearch):
    """PPO agents generating choice vectors (see the module docstring)."""

    name = "ppo"
    objectives = FITNESS
    state_version = STATE_VERSION

    def __init__(self, space: SearchSpace, options: PPOOptions | None = None, seed: int = 0):
        self.space = space
        self.options = o = options if options is not None else PPOOptions()
        self.seed = int(seed)
        self.choices = [int(c) for c in space.choices()]
        self._rng = np.random.default_rng(self.seed)
        self._ledger = Ledger(self.name, space)
        self._agents = [Agent() for _ in range(o.agents)]
        self._cache_log: list[list[Any]] = []  # [agent, key, model id] as caches grew
        self._next_agent = 0  # async: round robin
        self._queue: list[Candidate] = []  # sync: a generation made, not yet all asked
        self.updates = 0
        self.update_seconds: list[float] = []  # wall time of each update (not state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.policy = PolicyNet(self.choices, o.hidden)
            self.value = ValueNet(self.choices, o.hidden)
        self._params = list(self.policy.parameters()) + list(self.value.parameters())
        self._opt = torch.optim.Adam(self._params, lr=o.lr)
        self._np_policy: NumpyPolicy | None = None  # the policy's weights for generating

    @property
    def mode(self) -> str:
        return "generational" if self.options.update == "sync" else "steady_state"

    # -- protocol ------------------------------------------------------------------------
    def ask(self, n: int | None = None) -> list[Candidate]:
        """sync: the rest of the generation (or `n` of it); async: up to `n` (None: 1),
        one per free agent in turn. [] while every agent waits, or once all is asked."""
        check_ask(n)
        if self.options.update == "async":
            return self._ask_async(1 if n is None else n)
        if not self._queue:
            if any(a.closed for a in self._agents) or self._ledger.asked >= self.budget:
                return []  # the generation in flight must be told first, or all is asked
            self._queue = self._generation()
        k = len(self._queue) if n is None else min(n, len(self._queue))
        out, self._queue = self._queue[:k], self._queue[k:]
        return out

    def tell(self, results: list[Result]) -> None:
        """Record results; every batch whose rewards are now all known is learned from."""
        for r in results:
            if isinstance(r, Result) and any(r.model_id == c.model_id for c in self._queue):
                raise AdapterError(
                    f"result for model {r.model_id}, which this ppo adapter has made but not "
                    "handed out yet; tell only results of candidates returned by ask()"
                )
        if self._ledger.accept(results):
            self._learn()

    # -- state ---------------------------------------------------------------------------
    def state_parts(self) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """(head, append-only logs): the weights, Adam's moments, agents' batches and
        queue in the head; the candidates, results and agents' caches (`agent_cache`:
        [agent, choice-vector key, model id] as each entered) in logs (docs/plugins.md)."""
        opt = self._opt.state_dict()["state"]
        head = {
            "updates": self.updates,
            "next_agent": self._next_agent,
            "agents": [a.to_dict() for a in self._agents],
            "queue": [c.to_dict() for c in self._queue],
            "policy": _arrays(self.policy.state_dict()),
            "value": _arrays(self.value.state_dict()),
            "optimizer": {str(i): _arrays(s) for i, s in opt.items()},
        }
        return self._parts(head, {"agent_cache": self._cache_log})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_head(state)
        self.updates = int(state["updates"])
        self._next_agent = int(state["next_agent"])
        self._agents = [Agent.from_dict(a) for a in state["agents"]]
        self._cache_log = [list(e) for e in state.get("agent_cache", [])]
        for a, key, model_id in self._cache_log:
            self._agents[int(a)].cache[str(key)] = int(model_id)
        self._queue = [Candidate.from_dict(c) for c in state["queue"]]
        self.policy.load_state_dict(_tensors(state["policy"]))
        self.value.load_state_dict(_tensors(state["value"]))
        self._np_policy = None
        opt = self._opt.state_dict()
        opt["state"] = {int(i): _tensors(s) for i, s in state["optimizer"].items()}
        self._opt.load_state_dict(opt)
        self._ledger.load_state_dict(state)

    # -- generating ----------------------------------------------------------------------
    def _generation(self) -> list[Candidate]:
        """sync: every agent's batch (M new models each, fewer at the end of the budget)."""
        out: list[Candidate] = []
        for agent in self._agents:
            out += self._fill(agent, None)
            agent.closed = True
        return out

    def _ask_async(self, n: int) -> list[Candidate]:
        """async: one new model from each open agent in turn; [] once every agent waits."""
        out: list[Candidate] = []
        while len(out) < n and self._ledger.asked < self.budget:
            open_agents = [
                (self._next_agent + j) % len(self._agents)
                for j in range(len(self._agents))
                if not self._agents[(self._next_agent + j) % len(self._agents)].closed
            ]
            if not open_agents:
                break  # every agent waits for the rewards of its batch
            a = open_agents[0]
            agent = self._agents[a]
            out += self._fill(agent, 1)
            if _new_models(agent) >= self.options.batch_size:
                agent.closed = True
            self._next_agent = (a + 1) % len(self._agents)
        return out

    def _fill(self, agent: Agent, want: int | None) -> list[Candidate]:
        """Episodes into the agent's batch until it holds M new models, the budget is
        asked, or `want` new models are made; cache hits join on the way. Returns the
        new candidates."""
        o = self.options
        out: list[Candidate] = []
        while (
            _new_models(agent) < o.batch_size
            and self._ledger.asked < self.budget
            and (want is None or len(out) < want)
        ):
            if agent.hits >= o.max_cache_hits:
                arch, key = sample_unseen(self.space, self._rng, agent.cache)
                actions = self.space.encode(arch)
                logp = self._log_probs(actions)
            else:
                actions, logp = self._sample()
                key = vector_key(actions)
                if key in agent.cache:
                    agent.batch.append(Episode(actions, logp, agent.cache[key], False))
                    agent.hits += 1
                    continue
            agent.hits = 0
            cand = self._ledger.new(self.space.decode(actions), self.updates)
            if key not in agent.cache:
                agent.cache[key] = cand.model_id
                index = next(i for i, a in enumerate(self._agents) if a is agent)
                self._cache_log.append([index, key, cand.model_id])
            agent.batch.append(Episode(actions, logp, cand.model_id, True))
            out.append(cand)
        return out

    def _sample(self) -> tuple[list[int], list[float]]:
        """One action sequence from the policy, and the log-probability of each action."""
        return self._numpy_policy().walk(draw=self._draw)

    def _log_probs(self, actions: list[int]) -> list[float]:
        return self._numpy_policy().walk(actions=actions)[1]

    def _draw(self, p: np.ndarray) -> int:
        cdf = np.cumsum(p)
        return int(np.searchsorted(cdf, self._rng.random() * cdf[-1], side="right"))

    def _numpy_policy(self) -> NumpyPolicy:
        if self._np_policy is None:
            self._np_policy = NumpyPolicy(self.policy)
        return self._np_policy

    # -- learning ------------------------------------------------------------------------
    def _ready(self, agent: Agent) -> bool:
        told = self._ledger.results
        return agent.closed and all(e.source in told for e in agent.batch)

    def _learn(self) -> None:
        """sync: once the whole generation is told, one update averaged over the agents;
        async: each agent whose batch is told updates the shared weights in turn."""
        if self.options.update == "sync":
            if self._queue or not all(self._ready(a) for a in self._agents):
                return
            groups = [self._agents]
        else:
            groups = [[a] for a in self._agents if self._ready(a)]
        for agents in groups:
            batches = [a.batch for a in agents if a.batch]
            if batches:
                self._update(batches)
            for a in agents:
                a.batch, a.closed = [], False

    def _update(self, batches: list[list[Episode]]) -> None:
        """PPO on the agents' batches: `epochs` steps on the mean of their losses, on one
        CPU thread (the networks are tiny: more threads only wait for each other)."""
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._ppo_steps(batches)
        finally:
            torch.set_num_threads(threads)
        self._np_policy = None
        self.updates += 1
        self.update_seconds.append(time.perf_counter() - t0)

    def _ppo_steps(self, batches: list[list[Episode]]) -> None:
        o = self.options
        told = self._ledger.results
        prepared = []
        for batch in batches:
            actions = torch.tensor([e.actions for e in batch], dtype=torch.long)
            old = torch.tensor([e.logp for e in batch], dtype=torch.float32)
            ret = torch.tensor(
                [reward(told[e.source]) * o.reward_scale for e in batch], dtype=torch.float32
            )
            x = sequence_inputs(actions, self.choices)
            with torch.no_grad():
                adv = ret[:, None] - self.value(actions, x)
            adv = adv - adv.mean()
            if adv.numel() > 1:
                adv = adv / (adv.std() + 1e-8)
            prepared.append((actions, x, old, ret, adv))
        for _ in range(o.epochs):
            loss = torch.zeros(())
            for actions, x, old, ret, adv in prepared:
                logp, ent = self.policy.log_probs(actions, x)
                ratio = torch.exp(logp - old)
                surrogate = torch.min(ratio * adv, ratio.clamp(1 - o.clip, 1 + o.clip) * adv)
                value_err = (self.value(actions, x) - ret[:, None]).pow(2).mean()
                loss = loss + (
                    -surrogate.mean() + o.value_coef * value_err - o.entropy_coef * ent.mean()
                )
            self._opt.zero_grad()
            (loss / len(prepared)).backward()
            torch.nn.utils.clip_grad_norm_(self._params, o.max_grad_norm)
            self._opt.step()


def _new_models(agent: Agent) -> int:
    return sum(1 for e in agent.batch if e.new)


def _arrays(tensors: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A state dict's tensors as numpy arrays (copies; 0-d tensors as 0-d arrays)."""
    return {str(k): v.detach().cpu().numpy().copy() for k, v in tensors.items()}


def _tensors(arrays: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Inverse of `_arrays` (numpy arrays, as the run directory's .npz gives them back)."""
    return {str(k): torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}


def make_ppo(space: SearchSpace, options: Mapping[str, Any], seed: int) -> PPOSearch:
    """The registry's factory (entry point `a4nn.adapters: ppo`)."""
    return PPOSearch(space, validate_options(PPOOptions, options, "search.options"), seed)
