"""The ``mixkit analyze`` subcommand (registered through the ``mixkit.commands`` entry point ``analyze``):
the papers' analyses on every checkpoint of a ``mixkit bench`` run (:mod:`mixkit.analysis.run`)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["register"]

_ANALYSES = "deepfool, noise, gradients, calibration, transfer, efficiency"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="the papers' analyses (DeepFool, noise, input gradients, calibration, transfer, efficiency) "
                        "on the checkpoints of a bench run",
        description="Run the chosen analyses on every checkpoint of a `mixkit bench` output folder (OUT/state/*.pt), "
                    "on its run's test split; write analysis.jsonl (atomically, after every analysis: an "
                    "interrupted run resumes where it stopped) and analysis.md (mean ± std over seeds, paired "
                    "differences to vanilla with 95%% intervals, plots).")
    p.add_argument("run_dir", help="a `mixkit bench --out` folder")
    p.add_argument("--analyses", default="deepfool,noise,gradients,calibration,efficiency",
                   help=f"comma list among {_ANALYSES} (default: all but transfer)")
    p.add_argument("--max-eval", dest="max_eval", type=int, default=500,
                   help="test images per checkpoint (the first N of the run's test split; default 500)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--transfer-dataset", dest="transfer_dataset",
                   help="the second dataset of the transfer analysis (e.g. digits, fashion-mnist, mnist1d)")
    p.add_argument("--data-dir", dest="data_dir", help="where the second dataset's files are")
    p.add_argument("--transfer-n", dest="transfer_n", type=int, default=1000,
                   help="training images of the second dataset (stratified subset; default 1000)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="recompute every analysis instead of keeping the finished ones in analysis.jsonl")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..analysis.run import analyze

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir {str(run_dir)!r} is not a folder (pass a `mixkit bench --out` folder)")
    names = [a.strip() for a in args.analyses.split(",") if a.strip()]
    md = analyze(run_dir, names, max_eval=args.max_eval, device=args.device, transfer_dataset=args.transfer_dataset,
                 data_dir=args.data_dir, transfer_n=args.transfer_n, resume=args.resume, progress=not args.quiet)
    print(f"results: {run_dir / 'analysis.jsonl'}\nreport:  {md}")
    return 0
