"""The ``mixkit analyze`` subcommand (registered through the ``mixkit.commands`` entry point ``analyze``):
the papers' analyses on every checkpoint of a ``mixkit bench`` run (:mod:`mixkit.analysis.run`)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["register"]

_ANALYSES = "deepfool, noise, gradients, calibration, cam, transfer (per checkpoint); efficiency, mutual_info (per run)"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="the papers' analyses (DeepFool, noise, input gradients, calibration, transfer, efficiency) "
                        "on the checkpoints of a bench run",
        description="Run the chosen analyses on every checkpoint of a `mixkit bench` output folder (OUT/state/*.pt), "
                    "on its run's test split; write analysis.jsonl (atomically, after every analysis: an "
                    "interrupted run resumes where it stopped) and analysis.md (mean ± std over seeds, paired "
                    "differences to vanilla with 95%% intervals, plots).")
    p.add_argument("run_dir", nargs="?", help="a `mixkit bench --out` folder (or give --checkpoint)")
    p.add_argument("--checkpoint", action="append", dest="checkpoints", metavar="CKPT",
                   help="analyse this bench checkpoint (OUT/state/<method>-s<seed>.pt) instead of a whole run "
                        "(repeatable); the results go to --out")
    p.add_argument("--out", help="where analysis.jsonl / analysis.md go with --checkpoint (default: the run folder "
                                 "the first checkpoint belongs to)")
    p.add_argument("--dataset", help="evaluate on this dataset instead of the run's (same input shape)")
    p.add_argument("--analyses", default=None,
                   help=f"comma list among {_ANALYSES} (default: deepfool,noise,gradients,calibration,cam and, for a "
                        "run folder, efficiency)")
    p.add_argument("--max-eval", dest="max_eval", type=int, default=500,
                   help="test images per checkpoint (the first N of the run's test split; default 500)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--transfer-dataset", dest="transfer_dataset",
                   help="the second dataset of the transfer analysis (e.g. digits, fashion-mnist, mnist1d)")
    p.add_argument("--data-dir", dest="data_dir", help="where the second dataset's files are")
    p.add_argument("--transfer-n", dest="transfer_n", type=int, default=1000,
                   help="training images of the second dataset (stratified subset; default 1000)")
    p.add_argument("--vae-epochs", dest="vae_epochs", type=int, default=20,
                   help="training epochs of each VAE of the mutual_info analysis (default 20)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="recompute every analysis instead of keeping the finished ones in analysis.jsonl")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..analysis.run import DEFAULT_ANALYSES, analyze

    if args.run_dir is None and not args.checkpoints:
        raise ValueError("give a run folder (mixkit analyze OUT) or one or more --checkpoint CKPT")
    if args.run_dir is not None and args.checkpoints:
        raise ValueError("give either a run folder or --checkpoint, not both")
    if args.checkpoints:
        first = Path(args.checkpoints[0])
        run_dir = Path(args.out) if args.out else (first.parent.parent if first.parent.name == "state" else first.parent)
    else:
        run_dir = Path(args.run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run_dir {str(run_dir)!r} is not a folder (pass a `mixkit bench --out` folder)")
    if args.analyses is None:
        names = list(DEFAULT_ANALYSES) + ([] if args.checkpoints else ["efficiency"])
    else:
        names = [a.strip() for a in args.analyses.split(",") if a.strip()]
    md = analyze(run_dir, names, max_eval=args.max_eval, device=args.device, checkpoints=args.checkpoints,
                 dataset=args.dataset, transfer_dataset=args.transfer_dataset, data_dir=args.data_dir,
                 transfer_n=args.transfer_n, vae_epochs=args.vae_epochs, resume=args.resume, progress=not args.quiet)
    print(f"results: {run_dir / 'analysis.jsonl'}\nreport:  {md}")
    return 0
