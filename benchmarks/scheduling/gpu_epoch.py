"""GPU epoch loop: the old loop (host data, three host syncs per step) against today's.

One process, one model, one device, the variants taking turns epoch by epoch so that
drift falls on all alike:

- `host+sync` (the baseline, the training loop before 2026-11-24, copied here): batches
  sliced from host memory and copied each step; `loss.item()`, the accuracy count and
  the finite-loss check each wait for the GPU every step. Its evaluation pass is today's
  `evaluate` (the old one also waited twice per batch), so the baseline is a little
  faster than the loop before was, and the speed-ups below understate the change;
- `host`: today's `a4nn.train._train_epoch` on host-resident data (sums stay on the
  device, one sync per epoch);
- `device`: today's loop as `train_candidate` runs it, on `TensorData.on(device)`.

Each epoch is one training pass plus one evaluation pass over the validation set, as
`train_candidate` does. The model is model 0 of the GPU curve set (NSGA-Net macro
genome, channel widths 24/48/96, 32x32 inputs, batch 128, 4,000 + 4,000 images: the
recipe of benchmarks/data/xfel-curves-gpu); the images are random, since speed does not
depend on their content. Reports the median seconds per epoch of each variant and its
ratio to the baseline.

    python benchmarks/scheduling/gpu_epoch.py [--repeats 7] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from a4nn.train import TensorData, _train_epoch, evaluate  # noqa: E402
from adapters.nsganet.model import build_model  # noqa: E402

GENOME = [[1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]]
VARIANTS = ("host+sync", "host", "device")


def train_epoch_synced(model, opt, data, batch_size, gen, device):
    """The loop as it was: three host syncs per step, batches copied from the host."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    n = data.x_train.shape[0]
    order = torch.randperm(n, generator=gen)
    total_loss, correct = 0.0, 0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        xb = data.x_train[idx].to(device, non_blocking=True)
        yb = data.y_train[idx].to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = loss_fn(out, yb)
        if not torch.isfinite(loss):
            return float("nan"), float("nan")
        loss.backward()
        opt.step()
        total_loss += loss.item() * len(idx)
        correct += int((out.argmax(1) == yb).sum())
    return total_loss / n, 100.0 * correct / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=4000, help="training and validation images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--device", default="cuda", help="cpu only checks that the script runs")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_epoch.py needs a CUDA device", file=sys.stderr)
        return 2
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2 * args.n, 1, 32, 32, generator=g)
    y = torch.randint(0, 2, (2 * args.n,), generator=g)
    host = TensorData(x[: args.n], y[: args.n], x[args.n :], y[args.n :], 2)
    on_device = host.on(device)
    models, opts = {}, {}
    for v in VARIANTS:
        torch.manual_seed(0)
        models[v] = build_model(GENOME, in_channels=1, num_classes=2, channels=(24, 48, 96))
        models[v].to(device)
        opts[v] = torch.optim.SGD(models[v].parameters(), lr=0.05, momentum=0.9)

    def epoch(v: str) -> float:
        data = on_device if v == "device" else host
        step = train_epoch_synced if v == "host+sync" else _train_epoch
        gen = torch.Generator().manual_seed(1)
        sync()
        t0 = time.perf_counter()
        step(models[v], opts[v], data, args.batch_size, gen, device)
        evaluate(models[v], data.x_val, data.y_val, args.batch_size, device)
        sync()
        return time.perf_counter() - t0

    for v in VARIANTS:  # warm-up: cuDNN algorithm choice, allocator, lazy init
        epoch(v)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.repeats):
        for v in VARIANTS[r % 3 :] + VARIANTS[: r % 3]:
            times[v].append(epoch(v))
    med = {v: statistics.median(t) for v, t in times.items()}
    result = {
        "command": "python benchmarks/scheduling/gpu_epoch.py " + " ".join(sys.argv[1:]),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else "none (cpu)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "images": args.n,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "seconds_per_epoch": times,
        "median_seconds_per_epoch": med,
        "speedup_over_host+sync": {v: med["host+sync"] / med[v] for v in VARIANTS},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_epoch.json").write_text(json.dumps(result, indent=1) + "\n")
    for v in VARIANTS:
        print(f"{v:10s} median {med[v] * 1000:7.1f} ms/epoch  x{med['host+sync'] / med[v]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
