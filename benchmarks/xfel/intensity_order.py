"""Check that the simulated beam intensity orders classification accuracy.

Train ONE small fixed CNN, identically (same seed, hyperparameters and image count), on
datasets simulated at each fluence and report the test accuracy. The physics defaults of
``a4nn.data.xfel`` must give 1e14 < 1e15 <= 1e16.

    .venv/bin/python benchmarks/xfel/intensity_order.py [--n-train 1600 --n-test 400]

Writes ``benchmarks/xfel/intensity_order.json`` (and prints a Markdown table).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from a4nn.data.loaders import DataSpec, load_dataset
from a4nn.data.xfel import Detector, simulate_dataset

INTENSITIES = (1e14, 1e15, 1e16)


class SmallCNN(nn.Module):
    """Fixed three-block CNN: conv-BN-ReLU-pool ×3, global average pool, linear."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        blocks, c_in = [], 1
        for c_out in (16, 32, 64):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def train_and_test(data, epochs: int, seed: int, batch: int = 64, lr: float = 2e-3) -> dict:
    """Adam with a cosine learning-rate decay to 0 (so the last epoch is stable),
    cross-entropy, fixed seed; returns final and best test accuracy (%)."""
    torch.manual_seed(seed)
    model = SmallCNN(data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(data.y_train) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_va, y_va = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    g = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(batch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(x).argmax(1) for x in x_va.split(512)])
        history.append(100.0 * (pred == y_va).float().mean().item())
    return {"final_acc": history[-1], "best_acc": max(history), "history": history}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=1600)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--size", type=int, default=32, help="images are resized to SIZE×SIZE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--energy-ev", type=float, default=None)
    ap.add_argument("--distance-m", type=float, default=None)
    ap.add_argument("--pixel-m", type=float, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("intensity_order.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)

    base = Detector()
    detector = Detector(
        photon_energy_ev=args.energy_ev or base.photon_energy_ev,
        distance_m=args.distance_m or base.distance_m,
        pixel_size_m=args.pixel_m or base.pixel_size_m,
    )
    rows = []
    t_all = time.perf_counter()
    for intensity in INTENSITIES:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            simulate_dataset(
                Path(tmp), intensity, args.n_train, args.n_test, seed=args.seed,
                progress=False, detector=detector,
            )  # fmt: skip
            meta = json.loads((Path(tmp) / "dataset.json").read_text())
            t_sim = time.perf_counter() - t0
            data = load_dataset(
                DataSpec(format="folder", path=Path(tmp), normalization="log1p",
                         resize=args.size)
            )  # fmt: skip
        zero = float((data.x_val == 0).mean())
        t0 = time.perf_counter()
        res = train_and_test(data, args.epochs, args.seed)
        t_train = time.perf_counter() - t0
        rows.append(
            {
                "intensity": intensity,
                "mean_photons_per_image": meta["mean_photons_per_image"],
                "zero_pixel_fraction_resized": zero,
                "simulate_s": t_sim,
                "train_s": t_train,
                **res,
            }
        )
        print(
            f"{intensity:.0e}: photons/image {meta['mean_photons_per_image']:.0f}  "
            f"final {res['final_acc']:.1f}%  best {res['best_acc']:.1f}%  "
            f"history {[round(h, 1) for h in res['history']]}  "
            f"simulate {t_sim:.1f}s train {t_train:.1f}s",
            flush=True,
        )
    acc = [r["final_acc"] for r in rows]
    ordered = acc[0] < acc[1] <= acc[2]
    result = {
        "command": "python benchmarks/xfel/intensity_order.py "
        + f"--n-train {args.n_train} --n-test {args.n_test} --epochs {args.epochs} "
        + f"--size {args.size} --seed {args.seed}",
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "detector": {
            "photon_energy_ev": detector.photon_energy_ev,
            "distance_m": detector.distance_m,
            "pixel_size_m": detector.pixel_size_m,
            "pixels": detector.pixels,
        },
        "rows": rows,
        "ordered_1e14_lt_1e15_le_1e16": ordered,
        "wall_s": time.perf_counter() - t_all,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| intensity | photons/image | test acc (final) | best |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['intensity']:.0e} | {r['mean_photons_per_image']:.0f} | "
            f"{r['final_acc']:.1f}% | {r['best_acc']:.1f}% |"
        )
    print(f"ordering 1e14 < 1e15 <= 1e16: {'PASS' if ordered else 'FAIL'}")


if __name__ == "__main__":
    main()
