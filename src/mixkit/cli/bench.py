"""The ``mixkit bench`` and ``mixkit report`` subcommands (registered through the
``mixkit.commands`` entry point ``bench``)."""
from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any, Dict

from .params import add_param_option, parse_params
from ..bench.report import add_report_parser

if TYPE_CHECKING:
    from ..bench.config import BenchConfig

__all__ = ["register", "config_from_args"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="train and compare mixing methods under one protocol (multi-seed, calibration, robustness)",
        description="Train every method x seed with the same recipe and report accuracy (final and median of the "
                    "last k epochs), NLL, ECE, corruption / FGSM / occlusion robustness and throughput. "
                    "Without arguments: the embedded digits dataset, a small ResNet, every hand-crafted mixer, 3 seeds "
                    "(about 5 minutes on 2 CPU cores).")
    p.add_argument("--config", help="YAML or TOML file with BenchConfig fields (flags override it)")
    p.add_argument("--preset", help="a paper recipe: mixup-cifar, fmix-cifar, openmixup-cifar, puzzlemix-cifar, cpu-small")
    p.add_argument("--dataset", help="digits (default), fashion-mnist, mnist1d, cifar10, cifar100, folder:PATH")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--download", action="store_true", default=None, help="download missing data (needs internet)")
    p.add_argument("--n-train", dest="n_train", type=int, help="stratified subset of the training split")
    p.add_argument("--n-test", dest="n_test", type=int)
    p.add_argument("--model", help="resnet8 (default), resnet20, resnet18, preactresnet18, cnn1d")
    p.add_argument("--width", type=int)
    p.add_argument("--methods", help="comma list, e.g. vanilla,mixup,cutmix,fmix (see `mixkit list`); a+b alternates "
                                      "two methods batch by batch, e.g. mixup+fmix (the FMix repository's alt_mixup_fmix)")
    add_param_option(p, qualified=True,
                     help="method hyper-parameters, e.g. --param mixup.alpha=0.2 cutmix.alpha=1 (repeatable)")
    p.add_argument("--mode", choices=["batch", "sample"])
    p.add_argument("--seeds", help="N (seeds 0..N-1) or a comma list of seeds")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--schedule", choices=["cosine", "step"])
    p.add_argument("--loss", choices=["soft_ce", "bce_softmax"])
    p.add_argument("--smoothing", type=float)
    p.add_argument("--median-last", dest="median_last", type=int)
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument("--no-corruptions", dest="eval_corruptions", action="store_false", default=None)
    p.add_argument("--no-fgsm", dest="eval_fgsm", action="store_false", default=None)
    p.add_argument("--no-occlusion", dest="eval_occlusion", action="store_false", default=None)
    p.add_argument("--max-eval", dest="max_eval", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda")
    p.add_argument("--threads", type=int, help="torch threads of every training process (default 1); part of the "
                                                "protocol, since the thread count changes the float reduction order")
    p.add_argument("--jobs", type=int, help="train this many runs in parallel processes (default: one per CPU core, "
                                             "at most 4; 1 on GPU; N > 1 on GPU packs N runs onto the device, spread "
                                             "over the visible GPUs); the numbers do not depend on it")
    p.add_argument("--data-placement", dest="data_placement", choices=["auto", "host", "device"],
                   help="where the training split lives: device (the whole split on the GPU, batches gathered there), "
                        "host (each batch copied), auto (default: device on CUDA when it fits); numbers do not change")
    p.add_argument("--compile", choices=["off", "model", "mixer", "all"],
                   help="torch.compile the model, the mixer's apply, or both (default off; it changes float order, "
                        "so it enters the run key)")
    p.add_argument("--throughput-steps", dest="throughput_steps", type=int,
                   help="timed training steps per method in the throughput pass after training (default 6; 0: off)")
    p.add_argument("--out", help="output folder (default runs/bench)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="ignore checkpoints and finished runs")
    p.add_argument("--overwrite", action="store_true",
                   help="discard the results and checkpoints of another configuration in --out and start over")
    p.add_argument("--quiet", dest="progress", action="store_false", default=None, help="no progress bars")
    p.set_defaults(func=_run_bench)

    add_report_parser(subparsers)


_FIELDS = ("preset", "dataset", "data_dir", "download", "n_train", "n_test", "model", "width", "methods", "mode",
           "seeds", "epochs", "batch_size", "lr", "weight_decay", "schedule", "loss", "smoothing", "median_last",
           "augment", "eval_corruptions", "eval_fgsm", "eval_occlusion", "max_eval", "device", "threads", "jobs",
           "throughput_steps", "out", "progress")


def config_from_args(args) -> "BenchConfig":
    """The :class:`~mixkit.bench.config.BenchConfig` of parsed ``mixkit bench`` arguments: the ``--config``
    file, overridden by the flags given; ``--param METHOD.KEY=VALUE`` items are merged into the file's
    ``method_params`` (read by :func:`mixkit.cli.params.parse_params`; the method name is kept as written)."""
    from ..bench.config import BenchConfig, load_config_file

    d: Dict[str, Any] = load_config_file(args.config) if args.config else {}
    for f in _FIELDS:
        v = getattr(args, f, None)
        if v is not None:
            d[f] = v
    if isinstance(d.get("seeds"), str) and d["seeds"].strip().isdigit():
        d["seeds"] = int(d["seeds"])
    params = {k: dict(v) for k, v in (d.get("method_params") or {}).items()}
    for method, kv in parse_params(args.param, qualified=True, resolve=False).items():
        params.setdefault(method, {}).update(kv)
    if params:
        d["method_params"] = params
    d["command"] = "mixkit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else d.get("command")
    return BenchConfig.from_dict(d)


def _run_bench(args) -> int:
    from ..bench.runner import is_main_process, run_bench

    cfg = config_from_args(args)
    out = run_bench(cfg, resume=args.resume, overwrite=args.overwrite)
    if is_main_process():  # under torchrun every rank returns here; one prints
        print(f"results: {out / 'results.jsonl'}\nreport:  {out / 'report.md'}")
    return 0
