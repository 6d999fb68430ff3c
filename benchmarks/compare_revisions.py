#!/usr/bin/env python
"""Speed of this checkout against another git revision, mixer by mixer, as paired ratios.

A refactor must not slow the mixers down; this measures it. The other revision is checked out in a
temporary ``git worktree``; one timing process imports each tree, and in every round each
hand-crafted mixer (both modes, the same seeded batch) is timed in the two processes back to back,
alternating which goes first, so the ratio ``this / base`` is taken between neighbouring
measurements under the same load. The table gives the median ratio over rounds
and its inter-quartile range; below 1 this checkout is faster. Nothing here fails on time.

Usage::

    python benchmarks/compare_revisions.py --base HEAD~5 [--rounds 7] [--calls 30] [--size 32] [--batch 128]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("MixUp", "CutMix", "DirichletMixUp", "FMix", "HMix", "GMix", "SmoothMix", "ResizeMix", "GridMix")

_CHILD = r"""
import json, sys, time, statistics, torch
import mixkit
torch.set_num_threads(1)
size, batch, calls = json.loads(sys.argv[1])
x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
y = torch.randint(0, 100, (batch,), generator=torch.Generator().manual_seed(1))
mixers = {}
for line in sys.stdin:  # one case a line: "ClassName mode"; answers the median ms (or "nan" if absent)
    name, mode = line.split()
    cls = getattr(mixkit, name, None)
    if cls is None:
        print("nan", flush=True)
        continue
    if line not in mixers:
        mixers[line] = (cls(mode=mode, num_classes=100), torch.Generator().manual_seed(0))
        for _ in range(3):
            mixers[line][0](x, y, generator=mixers[line][1])
    m, g = mixers[line]
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        m(x, y, generator=g)
        ts.append(time.perf_counter() - t0)
    print(statistics.median(ts) * 1e3, flush=True)
"""


class _Timer:
    """A timing process importing mixkit from ``src``; ``time(case)`` returns its median ms."""

    def __init__(self, src: Path, args) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
        payload = json.dumps([args.size, args.batch, args.calls])
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, payload], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def time(self, case: str) -> float:
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the git revision to compare against (e.g. main, HEAD~3, a hash)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=30, help="timed calls per case per round (the median is kept)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixkit-base-") as tmp:
        wt = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(wt), args.base], cwd=ROOT, check=True)
        try:
            timers = {"this": _Timer(ROOT / "src", args), "base": _Timer(wt / "src", args)}
            cases = [f"{c} {m}" for c in CLASSES for m in ("batch", "sample")]
            ratios: dict = {}
            for r in range(args.rounds):  # within a round, each case runs back to back in both trees
                for i, case in enumerate(cases):
                    order = ("this", "base") if (r + i) % 2 == 0 else ("base", "this")
                    t = {k: timers[k].time(case) for k in order}
                    if t["this"] == t["this"] and t["base"] == t["base"]:  # both have the mixer
                        ratios.setdefault(case, []).append(t["this"] / t["base"])
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
            for t in timers.values():
                t.close()
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, check=False)
    print(f"this checkout / {args.base}: {args.batch}x3x{args.size}x{args.size}, CPU, 1 thread, "
          f"{args.rounds} rounds x {args.calls} calls (ratio per round; median [IQR])\n")
    print("| mixer | mode | this / base |\n|---|---|---:|")
    for case, rs in ratios.items():
        q = statistics.quantiles(rs, n=4) if len(rs) > 1 else [rs[0]] * 3
        name, mode = case.split()
        print(f"| {name} | {mode} | {statistics.median(rs):.2f} [{q[0]:.2f}, {q[2]:.2f}] |")
    allr = [statistics.median(rs) for rs in ratios.values()]
    print(f"\ngeometric mean of the medians: {statistics.geometric_mean(allr):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
