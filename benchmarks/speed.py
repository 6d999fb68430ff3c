#!/usr/bin/env python
"""Speed of mixkit's mixers against two floors and against peer libraries, and issue 10's goal table.

Sections (each timed in its own interleaved rounds; ratios are taken within each round, then the median
and IQR of the per-round ratios are reported -- see ``_harness.py``):

* ``tiny``: ``(2, 3, 4, 4)``, the fixed cost of one call (MixUp / CutMix against timm);
* ``32``: ``(128, 3, 32, 32)``, every mixkit mixer in both modes, every peer mode, the FMix masks
  against the official generator, and the pieces the goal rows are bounded by;
* ``224``: ``(64, 3, 224, 224)``, the same mixers (CutMix / MixUp peers), in the page-fault regime of this
  process, and the goal cases again in a subprocess with ``THP_MEM_ALLOC_ENABLE`` flipped;
* ``1d``: ``(128, 3, 256)`` and ``3d``: ``(16, 1, 32, 32, 32)``, mixkit against the floor, timm MixUp.

Floors: **new batch** = ``x.index_select(0, perm).lerp_(x, w)`` (the gather writes a fresh output, then
one blend pass into it: the least a mixer returning a new batch must do); **out=** = the same into a
preallocated buffer (``index_select(..., out=buf)``), the floor for ``inplace=True``.

    python benchmarks/speed.py [--quick] [--threads 1] [--out docs/speed.md] [--sections tiny,32,224,1d,3d]
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import goals  # noqa: E402
import speed_report  # noqa: E402
from _harness import (Case, loadavg, page_fault_regime, run_rounds, set_clock, thp_active,  # noqa: E402
                      thp_env, thp_possible, thp_setting)

MIXERS = ["MixUp", "CutMix", "DirichletMixUp", "FMix", "HMix", "GMix", "SmoothMix", "ResizeMix", "GridMix"]
SEED = 0
#: section key -> (batch shape, number of classes)
SECTIONS: Dict[str, Tuple[Tuple[int, ...], int]] = {
    "tiny": ((2, 3, 4, 4), 10), "32": ((128, 3, 32, 32), 100), "224": ((64, 3, 224, 224), 1000),
    "1d": ((128, 3, 256), 100), "3d": ((16, 1, 32, 32, 32), 100),
}
QUICK = {"tiny": (2, 3, 4, 4), "32": (8, 3, 8, 8), "224": (4, 3, 16, 16), "1d": (8, 3, 16), "3d": (4, 1, 4, 4, 4)}


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_peers() -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Peers that load here: ``({key: entry}, {key: how, or why not})``."""
    peers: Dict[str, Any] = {}
    notes: Dict[str, str] = {}
    try:
        from timm.data import Mixup
        peers["timm"], notes["timm"] = Mixup, f"timm {_version('timm')}"
    except Exception as e:  # `import timm` needs a torchvision that loads; its mixup.py needs numpy + torch only
        spec = importlib.util.find_spec("timm")
        path = Path(spec.origin).parent / "data" / "mixup.py" if spec and spec.origin else None
        if path is not None and path.exists():
            try:
                ms = importlib.util.spec_from_file_location("_timm_mixup_standalone", path)
                mod = importlib.util.module_from_spec(ms)
                ms.loader.exec_module(mod)
                peers["timm"] = mod.Mixup
                notes["timm"] = (f"timm {_version('timm')} (timm/data/mixup.py loaded with importlib: `import timm` "
                                 f"failed: {type(e).__name__})")
            except Exception as e2:
                notes["timm"] = f"not loadable: {type(e2).__name__}: {e2}"
        else:
            notes["timm"] = "not installed"
    try:
        from torchvision.transforms import v2
        peers["torchvision"], notes["torchvision"] = v2, f"torchvision {_version('torchvision')}"
    except Exception as e:
        notes["torchvision"] = ("skipped: not importable beside this torch (" + f"{type(e).__name__}); run the "
                                "script in the second venv (benchmarks/README.md) to include it"
                                if _version("torchvision") else "skipped: not installed in this venv (run the "
                                "script in the second venv, benchmarks/README.md, to include it)")
    try:
        from kornia.augmentation import RandomCutMixV2, RandomMixUpV2
        peers["kornia"], notes["kornia"] = (RandomMixUpV2, RandomCutMixV2), f"kornia {_version('kornia')}"
    except Exception as e:
        notes["kornia"] = f"skipped ({type(e).__name__}: {str(e)[:80]})"
    try:
        import fmix_official_numpy
        peers["fmix"], notes["fmix"] = fmix_official_numpy, "numpy re-statement of the official generator"
    except Exception as e:
        notes["fmix"] = f"skipped ({type(e).__name__})"
    return peers, notes


def discover_mixers() -> Tuple[Dict[str, type], Dict[str, str]]:
    import mixkit
    found, missing = {}, {}
    for name in MIXERS:
        cls = getattr(mixkit, name, None)
        (found.__setitem__(name, cls) if cls is not None else missing.__setitem__(name, "not exported"))
    return found, missing


# ---------------------------------------------------------------------------------------------- cases
class Builder:
    """Collects the cases of one section; keys are ``group|mode|impl``."""

    def __init__(self, shape: Tuple[int, ...], classes: int, device: torch.device) -> None:
        self.shape, self.classes, self.device = shape, classes, device
        gd = torch.Generator().manual_seed(1234)
        self.x = torch.rand(*shape, generator=gd).to(device)
        self.y = torch.randint(0, classes, (shape[0],), generator=gd).to(device)
        b = shape[0]
        self.perm = torch.randperm(b, generator=torch.Generator().manual_seed(7)).to(device)
        self.w = torch.rand(b, generator=torch.Generator().manual_seed(8)).to(device).view(-1, *([1] * (len(shape) - 1)))
        self.cases: List[Case] = []

    def add(self, group: str, mode: str, impl: str, fn, setup=None, note: str = "", seed_globals=False) -> None:
        if seed_globals:  # peers draw from the global RNGs: seed them once, when the case first runs
            first = [True]

            def fn_seeded(a, fn=fn):
                if first[0]:
                    first[0] = False
                    np.random.seed(SEED)
                    torch.manual_seed(SEED)
                    import random
                    random.seed(SEED)
                return fn(a)
            f = fn_seeded
        else:
            f = fn
        self.cases.append(Case(f"{group}|{mode}|{impl}", f, setup, note))

    def fail(self, group: str, mode: str, impl: str, why: str) -> None:
        self.cases.append(Case(f"{group}|{mode}|{impl}", None, error=why))

    def gen(self) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(SEED)

    # ---- the two floors and the blend kernel
    def floors(self) -> None:
        x, perm, w = self.x, self.perm, self.w
        buf = torch.empty_like(x)
        xp = x.index_select(0, perm)
        self.add("floor", "-", "new batch", lambda _: x.index_select(0, perm).lerp_(x, w),
                 note="x.index_select(0, perm).lerp_(x, w): gather into a fresh output, one blend pass")
        self.add("floor", "-", "out=", lambda _: torch.index_select(x, 0, perm, out=buf).lerp_(x, w),
                 note="the same into a preallocated buffer: the floor for inplace=True")
        self.add("piece", "-", "blend kernel alone", lambda _: torch.lerp(xp, x, w, out=buf),
                 note="lerp(xp, x, w, out=buf), partner gathered beforehand")
        self.add("piece", "-", "gather alone (fresh)", lambda _: x.index_select(0, perm))
        self.add("piece", "-", "lerp, fresh output", lambda _: torch.lerp(xp, x, w), note="2nd buffer: lerp(x[perm], x, w)")

    def mixers(self, found: Dict[str, type], names=None, inplace=False) -> None:
        for name in names or found:
            if name not in found:
                continue
            for mode in ("batch", "sample"):
                try:
                    m = found[name](mode=mode, num_classes=self.classes)
                    g = self.gen()
                    m(self.x[:2], self.y[:2], generator=g)  # supports this shape?
                except Exception as e:
                    self.fail(name, mode, "mixkit", f"{type(e).__name__}: {str(e)[:90]}")
                    continue
                self.add(name, mode, "mixkit", lambda _, m=m, g=g: m(self.x, self.y, generator=g))
            if inplace:
                for mode in ("batch", "sample"):
                    m = found[name](mode=mode, num_classes=self.classes, inplace=True)
                    xi, g = self.x.clone(), self.gen()
                    self.add(name, mode, "mixkit inplace=True", lambda _, m=m, g=g, xi=xi: m(xi, self.y, generator=g))

    def timm(self, peers, groups=("MixUp", "CutMix")) -> None:
        if "timm" not in peers:
            return
        spatial = len(self.shape) - 2
        for group in groups:
            kw = dict(mixup_alpha=1.0, cutmix_alpha=0.0) if group == "MixUp" else dict(mixup_alpha=0.0, cutmix_alpha=1.0)
            for tmode, mode in (("batch", "batch"), ("pair", "sample"), ("elem", "sample")):
                impl = f"timm {tmode}"
                if group == "CutMix" and spatial != 2:
                    continue  # timm's boxes are 2-D
                if self.shape[0] % 2:
                    self.fail(group, mode, impl, "timm needs an even batch")
                    continue
                m = peers["timm"](mode=tmode, label_smoothing=0.0, num_classes=self.classes, prob=1.0, **kw)
                self.add(group, mode, impl, lambda xc, m=m: m(xc, self.y), setup=self.x.clone, seed_globals=True,
                         note="in place on a fresh clone made outside the timed call")

    def tv_kornia(self, peers) -> None:
        if len(self.shape) != 4:
            return
        if "torchvision" in peers:
            v2 = peers["torchvision"]
            for group, tcls in (("MixUp", v2.MixUp), ("CutMix", v2.CutMix)):
                m = tcls(alpha=1.0, num_classes=self.classes)
                self.add(group, "batch", "torchvision v2", lambda _, m=m: m(self.x, self.y), seed_globals=True)
        if "kornia" in peers:
            kmix, kcut = peers["kornia"]
            for mode, same in (("batch", True), ("sample", False)):
                for group in ("MixUp", "CutMix"):
                    impl = "kornia same_on_batch" if same else "kornia"
                    try:
                        m = (kmix(p=1.0, same_on_batch=same, data_keys=["input", "class"]) if group == "MixUp" else
                             kcut(p=1.0, same_on_batch=same, use_correct_lambda=True, data_keys=["input", "class"]))
                        m = m.to(self.device)
                    except Exception as e:
                        self.fail(group, mode, impl, f"cannot construct: {e}")
                        continue
                    self.add(group, mode, impl, lambda _, m=m: m(self.x, self.y), seed_globals=True)

    # ---- the pieces the goal rows are bounded by
    def fmix_pieces(self, peers) -> None:
        b, sp = self.shape[0], self.shape[2:]
        n = int(np.prod(sp))
        g = torch.Generator().manual_seed(3)
        scores = torch.rand(b, n, generator=g)
        k = n // 2
        self.add("piece", "-", "FMix: topk(k=N/2) per row alone", lambda _: torch.topk(scores, k, dim=1),
                 note="the threshold kernel mixkit used before; accelerators still use it")
        self.add("piece", "-", "FMix: kthvalue per row alone", lambda _: torch.kthvalue(scores, k, dim=1))
        grid = (b, *sp[:-1], sp[-1] // 2 + 1, 2)
        gn = torch.Generator().manual_seed(4)
        self.add("piece", "-", "FMix: the noise draw alone", lambda _: torch.randn(grid, generator=gn),
                 note="randn of the rfft grid, two reals per frequency, from a generator")
        spec = torch.randn(b, *sp[:-1], sp[-1] // 2 + 1, dtype=torch.complex64, generator=g)
        self.add("piece", "-", "FMix: irfftn of the spectrum alone", lambda _: torch.fft.irfftn(spec, s=sp))
        try:
            from mixkit.masks import fourier
            num = torch.randint(1, n, (b,), generator=g)
            self.add("piece", "-", "FMix: mixkit's exact per-row threshold alone",
                     lambda _: fourier._top_select(scores, num), note="masks.fourier._top_select, random counts")
            from mixkit.mixers import _ops
            keep = torch.rand(b, 1, *sp, generator=g) < 0.5
            self.add("piece", "-", "FMix: the hard-mask blend alone", lambda _: _ops.mix_pair(self.x, self.perm, keep),
                     note="_ops.mix_pair with a random half mask")
            lam = torch.rand(b, generator=g)
            gg = self.gen()
            self.add("piece", "-", "FMix: masks.fourier.fmix_masks alone (bool)",
                     lambda _: fourier.fmix_masks(b, sp, lam, 3.0, generator=gg, dtype=torch.bool))
        except Exception:
            pass
        if "fmix" in peers and len(sp) == 2:
            off, rng = peers["fmix"], np.random.default_rng(SEED)
            self.add("piece", "-", f"FMix: official numpy masks, looped x{b}",
                     lambda _: torch.from_numpy(off.sample_masks_looped(b, 1.0, 3.0, tuple(sp), rng)[1]).float())

    def box_pieces(self) -> None:
        x, perm = self.x, self.perm
        h, w = self.shape[2], self.shape[3]
        keep = torch.ones(self.shape[0], 1, h, w, dtype=torch.bool)
        keep[:, :, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = False
        xp = x.index_select(0, perm)
        self.add("piece", "-", "where(keep, x, xp) alone (fresh)", lambda _: torch.where(keep, x, xp),
                 note="a centred box of 1/4 of the area")

        def paste(_):
            out = x.clone()
            out[:, :, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = xp[:, :, h // 4: 3 * h // 4, w // 4: 3 * w // 4]
            return out
        self.add("piece", "-", "clone + box slice copy (fresh)", paste, note="what a box paste must do at least")

    def resize_pieces(self) -> None:
        s = tuple(max(1, d // 2) for d in self.shape[2:])
        xp = self.x.index_select(0, self.perm)
        self.add("piece", "-", "ResizeMix: F.interpolate(x[perm], half size, nearest) alone",
                 lambda _: F.interpolate(xp, size=s, mode="nearest"))


def build(section: str, shape, classes: int, device, found, peers, thp_child: bool = False) -> List[Case]:
    b = Builder(shape, classes, device)
    b.floors()
    if section == "tiny":
        b.mixers(found, ["MixUp", "CutMix"])
        b.timm(peers)
        x, y = b.x, b.y
        b.add("piece", "-", "one small op: x.add(1)", lambda _: x.add(1))
        for name in ("MixUp", "CutMix"):
            if name in found:
                m, g = found[name](mode="batch", num_classes=classes), b.gen()
                b.add("piece", "-", f"{name} batch .mix() without targets", lambda _, m=m, g=g: m.mix(x, generator=g))
    elif section == "224" and thp_child:
        b.mixers(found, ["MixUp", "CutMix"], inplace=True)
        b.timm(peers, groups=("CutMix",))
        b.box_pieces()
    elif section in ("32", "224"):
        b.mixers(found, inplace=True) if section == "32" else b.mixers(found, ["MixUp", "CutMix"], inplace=True)
        if section == "224":
            b.mixers(found, [n for n in found if n not in ("MixUp", "CutMix")])
        b.timm(peers)
        b.tv_kornia(peers)
        b.box_pieces()
        b.fmix_pieces(peers)
        b.resize_pieces()
    else:  # 1d / 3d
        b.mixers(found)
        b.timm(peers, groups=("MixUp",))
        b.fmix_pieces(peers)
    return b.cases


# ---------------------------------------------------------------------------------------------- running
def run_section(section: str, args, found, peers, log, thp_child=False) -> Dict[str, Case]:
    shape = QUICK[section] if args.quick else SECTIONS[section][0]
    classes = SECTIONS[section][1]
    device = torch.device(args.device)
    cases = build(section, shape, classes, device, found, peers, thp_child)
    rounds = args.rounds or (2 if args.quick else (15 if section == "224" else 25))
    calls = 2 if args.quick else (3 if section == "224" else 7)
    budget = 0.02 if args.quick else (0.15 if section == "224" else 0.06)
    log(f"[{section}] {shape}: {len(cases)} cases, {rounds} rounds")
    anchor = next((c for c in cases if c.key == "floor|-|new batch"), None)
    run_rounds(cases, rounds, calls, budget, warmup=1, device=device, seed=SEED, anchor=anchor,
               log=log if not args.quick else None)
    return {c.key: c for c in cases}


def run_thp_child(args, log) -> Optional[Dict[str, Any]]:
    """The 224 px goal cases in a subprocess with THP_MEM_ALLOC_ENABLE flipped (see the README)."""
    if not thp_possible():
        return {"error": f"transparent huge pages are `{thp_active()}` here: no other regime to run"}
    if thp_active() == "always":
        return {"error": "THP is `always`: every process already gets huge pages; no expensive regime to compare"}
    env = dict(os.environ)
    if thp_env():
        env.pop("THP_MEM_ALLOC_ENABLE")
    else:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--thp-child", "--device", args.device, "--threads", str(args.threads),
           "--clock", args.clock]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--rounds", str(args.rounds)] if args.rounds else []
    log(f"[224] rerunning the goal cases with THP_MEM_ALLOC_ENABLE={env.get('THP_MEM_ALLOC_ENABLE', 'unset')}")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["cases"] = {k: Case(k, None, rounds=v["rounds"], faults=v["faults"], ref=v["ref"], error=v["error"], note=v["note"])
                     for k, v in data["cases"].items()}
    return data


def fmix_peak_case(shape):
    """For ``_harness.peak_memory``: FMix sample mode on a 1-channel batch."""
    import mixkit
    x = torch.rand(*shape)
    xs = torch.rand(2, *shape[1:])
    m = mixkit.FMix(mode="sample")
    g = torch.Generator().manual_seed(0)
    return (lambda s: m.mix(xs if s else x, generator=g)), x.numel() * x.element_size()


def floor_peak_case(shape):
    x, xs = torch.rand(*shape), torch.rand(2, *shape[1:])
    perm, w = torch.randperm(shape[0]), torch.rand(shape[0]).view(-1, *([1] * (len(shape) - 1)))

    def call(small):
        return xs.index_select(0, perm[:2] % 2).lerp_(xs, w[:2]) if small else x.index_select(0, perm).lerp_(x, w)
    return call, x.numel() * x.element_size()


def memory(args) -> Dict[str, Dict[str, Any]]:
    from _harness import peak_memory
    paths = [str(HERE), str(Path(importlib.import_module("mixkit").__file__).resolve().parents[1])]
    shapes = {"1x32": (8, 1, 64, 64) if args.quick else (128, 1, 32, 32),
              "1x224": (2, 1, 128, 128) if args.quick else (32, 1, 224, 224)}
    out = {}
    for k, shp in shapes.items():
        out[f"FMix sample {shp}"] = peak_memory("speed", "fmix_peak_case", [list(shp)], paths)
        out[f"floor (new batch) {shp}"] = peak_memory("speed", "floor_peak_case", [list(shp)], paths)
    return out


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default="tiny,32,224,1d,3d", help="which sections to run (default: all)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per section (default 25; 15 at 224 px)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the batches live (CUDA calls are "
                    "synchronised around each timed call; the page-fault rerun and the memory probe are CPU-only)")
    ap.add_argument("--out", default=None, help="markdown page to write the generated sections into")
    ap.add_argument("--clock", default="auto", choices=["auto", "wall", "cpu"],
                    help="cpu: process CPU time per call (robust on a loaded machine; needs one thread); wall: "
                         "perf_counter; auto (default): cpu with --threads 1, else wall")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds: the smoke test's mode")
    ap.add_argument("--no-thp-rerun", action="store_true", help="skip the 224 px rerun in the other page-fault regime")
    ap.add_argument("--thp-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.section_list = [s for s in args.sections.split(",") if s]
    bad = [s for s in args.section_list if s not in SECTIONS]
    if bad or not args.section_list:
        ap.error(f"--sections must be among {','.join(SECTIONS)}, got {args.sections!r}")
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        ap.error(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device != "cpu" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch.cuda.is_available() is False on this machine")
    if args.clock == "auto":
        args.clock = "cpu" if args.threads == 1 and args.device == "cpu" else "wall"
    if args.clock == "cpu" and args.device != "cpu":
        ap.error("--clock cpu measures host CPU time: use --clock wall with --device cuda")
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu needs --threads 1 (CPU time sums the threads)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    set_clock(args.clock)
    found, missing = discover_mixers()
    peers, notes = load_peers()
    log = (lambda s: print(s, file=sys.stderr, flush=True))  # noqa: E731
    if args.thp_child:
        cases = run_section("224", args, found, peers, log, thp_child=True)
        print(json.dumps({"regime": page_fault_regime(), "thp_env": thp_env(), "cases": {
            k: {"rounds": c.rounds, "faults": c.faults, "ref": c.ref, "error": c.error, "note": c.note}
            for k, c in cases.items()}}))
        return 0
    t0 = datetime.datetime.now()
    load0 = loadavg()
    results: Dict[str, Dict[str, Case]] = {}
    took: Dict[str, float] = {}
    for s in args.section_list:
        ts = datetime.datetime.now()
        results[s] = run_section(s, args, found, peers, log)
        took[s] = (datetime.datetime.now() - ts).total_seconds()
    thp = None
    if "224" in args.section_list and not args.no_thp_rerun and args.device == "cpu":
        ts = datetime.datetime.now()
        thp = run_thp_child(args, log)
        took["224 rerun"] = (datetime.datetime.now() - ts).total_seconds()
    mem = memory(args) if "32" in args.section_list and args.device == "cpu" else {}
    elapsed = (datetime.datetime.now() - t0).total_seconds()
    env = {"date": t0.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "cpu": f"{os.cpu_count()} logical cores", "device": args.device,
           "load": (load0, loadavg()), "thp": thp_setting(), "thp_env": os.environ.get("THP_MEM_ALLOC_ENABLE", "unset"),
           "regime": page_fault_regime(), "elapsed_s": elapsed, "took": took, "quick": args.quick, "clock": args.clock,
           "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "mixers": found, "missing": missing, "notes": notes,
           "op_counts": speed_report.op_counts(found, peers) if "tiny" in args.section_list else {}}
    shapes = {s: (QUICK[s] if args.quick else SECTIONS[s][0]) for s in args.section_list}
    res = speed_report.goal_results(results, thp, mem, env, peers)
    body = speed_report.render(results, shapes, thp, mem, env)
    if args.out:
        from _harness import write_section
        page = Path(args.out)
        if args.device == "cpu":
            write_section(page, "speed", body, title="# mixkit speed benchmark")
            goal_md = goals.publish(res, HERE.parent, "docs/speed.md", page)
        else:  # the goals are the CPU's: a CUDA run writes its own section beside them
            write_section(page, f"speed {args.device}", body, title="# mixkit speed benchmark")
            goal_md = ""
        print(f"wrote {args.out} in {elapsed:.0f} s", file=sys.stderr)
    else:
        goal_md = goals.table(res, HERE.parent, "docs/speed.md")
    print(body + "\n" + goal_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
