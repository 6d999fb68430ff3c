"""Clean train vs test accuracy of the final models of a `mixkit bench` run (from its checkpoints).

Usage:  python scripts/generalisation_gap.py CONFIG.toml [METHOD ...]

A mixing method is a regulariser: it can only help where the model overfits (train accuracy well above
test accuracy). This prints, per method, the mean over seeds of the clean training accuracy, the test
accuracy and their gap, from ``<out>/state/<method>-s<seed>.pt`` written by the run.
"""
from __future__ import annotations

import sys

import torch

from mixkit.bench.config import BenchConfig, load_config_file
from mixkit.bench.models import build_model
from mixkit.bench.runner import load_bench_data
from mixkit.bench.trainer import _quick_eval


def main(argv) -> int:
    if not argv:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    cfg = BenchConfig.from_dict(load_config_file(argv[0]))
    methods = argv[1:] or cfg.methods
    ds = load_bench_data(cfg)
    shape = (1, -1) + (1,) * ds.spatial_dims
    mean, std = torch.tensor(ds.mean).view(shape), torch.tensor(ds.std).view(shape)
    norm = lambda x: (x - mean) / std  # noqa: E731
    print(f"{cfg.dataset}, {cfg.model}, {cfg.epochs} epochs, {ds.n_train} train / {ds.n_test} test images")
    print("| method | clean train acc (%) | test acc (%) | gap (pp) |\n|---|---:|---:|---:|")
    for m in methods:
        tr, te = [], []
        for s in cfg.seeds:
            ck = torch.load(f"{cfg.out}/state/{m}-s{s}.pt", weights_only=False, map_location="cpu")
            model = build_model(cfg.model, ds.num_classes, ds.in_channels, ds.spatial_dims, cfg.width)
            model.load_state_dict(ck["model"])
            tr.append(_quick_eval(model, ds.x_train, ds.y_train, norm, torch.device("cpu"))[0])
            te.append(_quick_eval(model, ds.x_test, ds.y_test, norm, torch.device("cpu"))[0])
        a, b = 100 * sum(tr) / len(tr), 100 * sum(te) / len(te)
        print(f"| {m} | {a:.2f} | {b:.2f} | {a - b:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
