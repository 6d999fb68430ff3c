"""The paired comparisons behind issue 12's verdict table (docs/results/README.md, section 3), read from the
committed MNIST-1D run and its analyses.

Usage:  python scripts/mnist1d_claims.py [RUN_DIR [ALTERNATION_RUN_DIR]]
        (defaults docs/results/mnist1d_analyses and docs/results/mnist1d_alternation)

Prints, over the 3 paired seeds, mean differences with 95% t intervals: the top-1 order of claim 1, MixUp
against the masking methods for DeepFool and uniform noise (claim 3), and the input-gradient pair profile's
long-range / short-range ratio per method (claim 4), and the MixUp + FMix alternation against each alone (claim 5).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from mixkit.bench.report.stats import Stat, paired_difference


def _fmt(d):
    if d is None or d.lo is None:
        return "–"
    return f"{d.mean:+.4f} [{d.lo:+.4f}, {d.hi:+.4f}]" + (" *" if d.excludes_zero else "")


def main(argv) -> int:
    run = Path(argv[0] if argv else "docs/results/mnist1d_analyses")
    res = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines() if x.strip()]
    top1 = {}
    for r in res:
        if r.get("final"):
            top1.setdefault(r["method"], {})[r["seed"]] = r["test_top1"]
    an = [json.loads(x) for x in (run / "analysis.jsonl").read_text().splitlines() if x.strip()]

    def metric(analysis, key):
        out = {}
        for r in an:
            if r["analysis"] == analysis and key in r["metrics"]:
                out.setdefault(r["method"], {})[r["seed"]] = r["metrics"][key]
        return out

    print("claim 1: top-1 (final)")
    for a, b in (("fmix", "cutmix"), ("cutmix", "vanilla"), ("fmix", "vanilla")):
        print(f"  {a} - {b}: {_fmt(paired_difference(top1[a], top1[b]))}")
    print("claim 3: MixUp - each masking method")
    for key, analysis in (("l2_rho_mean", "deepfool"), ("linf_rho_mean", "deepfool"), ("mean_acc", "noise")):
        m = metric(analysis, key)
        for other in ("cutmix", "fmix", "gmix", "saliencymix", "hmix"):
            print(f"  {analysis}.{key}: mixup - {other}: {_fmt(paired_difference(m['mixup'], m[other]))}")
    print("claim 4: mean |g_a g_b| at distance 8 over distance 1 (input gradients), per method; and minus vanilla")
    d1, d8 = metric("gradients", "abs_grad_product@d1"), metric("gradients", "abs_grad_product@d8")
    ratio = {m: {s: d8[m][s] / d1[m][s] for s in d1[m]} for m in d1}
    for m in sorted(ratio, key=lambda k: (k != "vanilla", k)):
        st = Stat.of(sorted(ratio[m].items()))
        diff = "" if m == "vanilla" else "  vs vanilla " + _fmt(paired_difference(ratio[m], ratio["vanilla"]))
        vs_mixup = "" if m in ("vanilla", "mixup") else "  vs mixup " + _fmt(paired_difference(ratio[m], ratio["mixup"]))
        print(f"  {m}: {st.mean:.3f} ± {st.std:.3f}{diff}{vs_mixup}")
    alt = Path(argv[1] if len(argv) > 1 else "docs/results/mnist1d_alternation")
    if (alt / "results.jsonl").is_file():
        t5 = {}
        for r in (json.loads(x) for x in (alt / "results.jsonl").read_text().splitlines() if x.strip()):
            if r.get("final"):
                t5.setdefault(r["method"], {})[r["seed"]] = r["test_top1"]
        print("claim 5: top-1 of mixup+fmix minus")
        for other in ("mixup", "fmix", "vanilla"):
            print(f"  {other}: {_fmt(paired_difference(t5['mixup+fmix'], t5[other]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
