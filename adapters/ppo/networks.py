"""The PPO controller's networks: single-layer LSTMs over the action sequence.

An architecture is generated as a sequence of actions, one per position of the space's
choice vector. The input at step t is the one-hot of the previous action (zeros at
t = 0; width max(choices)) concatenated with the one-hot of the position t (width L),
so one LSTM serves positions of different numbers of options.

- `PolicyNet`: LSTM(hidden) then one linear layer giving every position's logits side
  by side (`sum(choices)` outputs; position t reads its own `choices[t]` of them).
- `NumpyPolicy`: the policy's weights in numpy, to generate sequences step by step.
- `ValueNet`: its own LSTM(hidden) then one linear output: the critic's estimate of the
  reward from the partial sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def sequence_inputs(actions: torch.Tensor, choices: Sequence[int]) -> torch.Tensor:
    """(B, L) actions -> (B, L, max(choices) + L) inputs (previous action, position)."""
    b, n = actions.shape
    k = max(choices)
    x = torch.zeros(b, n, k + n)
    if n > 1:
        x[:, 1:, :k] = F.one_hot(actions[:, :-1], k).float()
    x[:, torch.arange(n), k + torch.arange(n)] = 1.0
    return x


class NumpyPolicy:
    """The policy's weights as float64 numpy arrays, to generate one sequence quickly.

    Generating is sequential (each action is the next step's input), so it runs as plain
    numpy LSTM steps (PyTorch's gate order i, f, g, o) rather than one torch call per
    step; learning uses `PolicyNet` itself.
    """

    def __init__(self, net: PolicyNet) -> None:
        sd = {k: v.detach().cpu().double().numpy() for k, v in net.state_dict().items()}
        self.w_ih, self.w_hh = sd["lstm.weight_ih_l0"], sd["lstm.weight_hh_l0"]
        self.bias = sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"]
        self.w_out, self.b_out = sd["head.weight"], sd["head.bias"]
        self.choices, self.offsets = net.choices, net.offsets
        self.hidden = self.w_hh.shape[1]

    def walk(
        self, draw: Callable[[np.ndarray], int] | None = None, actions: Sequence[int] = ()
    ) -> tuple[list[int], list[float]]:
        """(actions, log-probabilities): drawn by `draw(probabilities)`, or the given
        `actions` scored."""
        k, hid = max(self.choices), self.hidden
        h, c = np.zeros(hid), np.zeros(hid)
        out_a: list[int] = []
        out_lp: list[float] = []
        prev = None
        for t, n in enumerate(self.choices):
            pre = self.bias + self.w_ih[:, k + t] + self.w_hh @ h
            if prev is not None:
                pre = pre + self.w_ih[:, prev]
            i, f = _sigmoid(pre[:hid]), _sigmoid(pre[hid : 2 * hid])
            g, o = np.tanh(pre[2 * hid : 3 * hid]), _sigmoid(pre[3 * hid :])
            c = f * c + i * g
            h = o * np.tanh(c)
            lo, hi = self.offsets[t], self.offsets[t + 1]
            z = self.w_out[lo:hi] @ h + self.b_out[lo:hi]
            z = z - z.max()
            lp = z - np.log(np.exp(z).sum())
            a = min(int(draw(np.exp(lp))), n - 1) if draw is not None else int(actions[t])
            out_a.append(a)
            out_lp.append(float(lp[a]))
            prev = a
        return out_a, out_lp


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class PolicyNet(nn.Module):
    """pi(a_t | a_<t): LSTM(hidden) and per-position logits."""

    def __init__(self, choices: Sequence[int], hidden: int = 32) -> None:
        super().__init__()
        self.choices = [int(c) for c in choices]
        self.offsets = [0]
        for c in self.choices:
            self.offsets.append(self.offsets[-1] + c)
        k = max(self.choices)
        self.lstm = nn.LSTM(k + len(self.choices), hidden, batch_first=True)
        self.head = nn.Linear(hidden, self.offsets[-1])
        # OpenAI Baselines' policy head (init_scale 0.01): the first policy is near uniform
        nn.init.orthogonal_(self.head.weight, gain=0.01)
        nn.init.zeros_(self.head.bias)
        # position t's logits padded to max(choices): head output index, and validity
        j = torch.arange(k)
        n = torch.tensor(self.choices)[:, None]
        self.register_buffer(
            "_index",
            torch.tensor(self.offsets[:-1])[:, None] + j.clamp(max=n - 1),
            persistent=False,
        )
        self.register_buffer("_valid", j < n, persistent=False)

    def log_probs(
        self, actions: torch.Tensor, x: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a_t | a_<t), entropy of pi(. | a_<t)), each (B, L), for (B, L) actions
        (`x`: their `sequence_inputs`, when already made)."""
        out, _ = self.lstm(sequence_inputs(actions, self.choices) if x is None else x)
        flat = self.head(out)  # (B, L, sum(choices))
        index = self._index.expand(flat.shape[0], -1, -1)
        logits = flat.gather(2, index).masked_fill(~self._valid, float("-inf"))
        lp = torch.log_softmax(logits, dim=-1)
        logp = lp.gather(2, actions[..., None]).squeeze(-1)
        ent = -(lp.exp() * lp.masked_fill(~self._valid, 0.0)).sum(-1)
        return logp, ent


class ValueNet(nn.Module):
    """V(a_<t): LSTM(hidden) and one output per step."""

    def __init__(self, choices: Sequence[int], hidden: int = 32) -> None:
        super().__init__()
        self.choices = [int(c) for c in choices]
        self.lstm = nn.LSTM(max(self.choices) + len(self.choices), hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, actions: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.lstm(sequence_inputs(actions, self.choices) if x is None else x)
        return self.head(out).squeeze(-1)
