#!/usr/bin/env python
"""Speed of mixkit's mixers against the memory-bound floor and against peer libraries.

Every mixer that exists in the installed ``mixkit`` is timed in both modes on float32 batches
``(128, 3, 32, 32)`` and ``(64, 3, 224, 224)`` (CPU, and CUDA when available), next to

* the **floor**: one ``torch.lerp(xp, x, w, out=out)`` pass over the batch with a partner batch
  ``xp = x[perm]`` gathered beforehand, per-row weights ``w`` ``(B, 1, 1, 1)`` and a preallocated
  output -- no mixer can beat it, since it reads two batches and writes one;
* the **peers** that are installed, in the same process: timm ``Mixup`` (``batch`` and ``elem``
  modes; mixup-only and cutmix-only configs), torchvision v2 ``MixUp`` / ``CutMix``, kornia
  ``RandomMixUpV2`` / ``RandomCutMixV2`` (per sample, and ``same_on_batch=True`` as batch mode), and a
  numpy re-statement of the official FMix mask generator (``fmix_official_numpy.py``).

What each timed call includes (the same for everyone where the library allows it):

* mixkit: ``mixer(x, y, generator=g)`` -- parameter draws, pairing, the mixed batch and the
  ``(B, K)`` float32 soft targets (``.mix(x)`` without targets is shown as a second row);
* timm: ``Mixup(x, y)`` -- draws, the mixed batch (in place, on a fresh clone of ``x`` made outside
  the timed region, since timm overwrites its input) and its ``(B, K)`` soft targets;
* torchvision v2: ``MixUp/CutMix(x, y)`` -- draws, the mixed batch and one-hot mixed targets;
* kornia: ``aug(x, y)`` -- draws, the mixed batch and its ``(B, 3)`` label triples (it builds no
  ``(B, K)`` soft targets; that cost, a few microseconds, is left out);
* official FMix: the numpy masks (one per batch, or ``B`` by looping the single-mask generator) and
  their conversion to a float32 tensor on the device; mixkit's row is its own mask construction.

Timing: each case gets a warm-up, then the median (and inter-quartile range) of N calls, each call
timed alone with ``time.perf_counter`` (after ``torch.cuda.synchronize`` on CUDA); per-call set-up
such as timm's fresh clone is outside the timed region. mixkit mixers get a fresh
``torch.Generator`` seeded with 0 per case (reused across the case's calls); peers get numpy/torch
global seeds 0 per case. The thread count is set explicitly (``--threads``) and recorded. The headline
numbers are the ratios (time / floor, ours / peer), not absolute times.

Usage::

    python benchmarks/speed.py [--sizes 32,224] [--device cpu|cuda|auto] [--repeats N] [--threads T]
                               [--out docs/speed.md] [--quick] [--batch B] [--section KEY]

``--out`` writes the markdown (atomically: a temporary file, then ``os.replace``) into a section of
the file keyed by the torch version and device, so runs in different environments (for example the
main venv and a venv with torchvision) can share one page. Benchmarks are not tests: nothing here
fails on time; the target lines print PASS/FAIL for a reader.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import random
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# mixers to look for, and the modules that may hold each (other engineers add them over time)
MIXER_MODULES: Dict[str, List[str]] = {
    "MixUp": ["mixkit.mixers.mixup"],
    "CutMix": ["mixkit.mixers.cutmix"],
    "DirichletMixUp": ["mixkit.mixers.dirichlet"],
    "FMix": ["mixkit.mixers.fmix"],
    "HMix": ["mixkit.mixers.hmix"],
    "GMix": ["mixkit.mixers.gmix", "mixkit.mixers.hmix"],
    "SmoothMix": ["mixkit.mixers.smoothmix", "mixkit.mixers.gmix", "mixkit.mixers.resizemix"],
    "ResizeMix": ["mixkit.mixers.resizemix"],
    "GridMix": ["mixkit.mixers.gridmix"],
}
MODES = ("batch", "sample")
SEED = 0


# ---------------------------------------------------------------------------------------------- timing
@dataclass
class Stat:
    median: float  # seconds
    q1: float
    q3: float
    best: float
    n: int

    @property
    def ms(self) -> float:
        return self.median * 1e3

    @property
    def iqr_ms(self) -> float:
        return (self.q3 - self.q1) * 1e3

    @staticmethod
    def of(times: List[float]) -> "Stat":
        t = sorted(times)
        if len(t) >= 4:
            q = statistics.quantiles(t, n=4)
            q1, q3 = q[0], q[2]
        else:
            q1, q3 = t[0], t[-1]
        return Stat(statistics.median(t), q1, q3, t[0], len(t))


@dataclass
class Settings:
    repeats: int      # timed calls per case and round
    warmup: int       # untimed calls per case and round
    rounds: int       # the case list is run this many times, interleaved, and all samples pooled
    budget_s: float   # rough time cap per case and round (repeats reduced for slow cases, never below 3)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _minor_faults() -> int:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):  # not on every platform
        return 0


def measure(fn: Callable[[Any], Any], setup: Optional[Callable[[], Any]], device: torch.device,
            cfg: Settings) -> Tuple[List[float], int]:
    """Times (seconds) of calls ``fn(setup())`` after warm-up, and the minor page faults taken inside
    the timed regions; ``setup`` runs outside the timed region."""
    est = None
    for _ in range(cfg.warmup):
        arg = setup() if setup else None
        _sync(device)
        t0 = time.perf_counter()
        out = fn(arg)
        _sync(device)
        est = time.perf_counter() - t0
        del out, arg
    n = cfg.repeats
    if est is not None and n > 3:
        n = max(3, min(n, int(cfg.budget_s / max(est, 1e-7))))
    times = []
    faults = 0
    for _ in range(n):
        arg = setup() if setup else None
        _sync(device)
        f0 = _minor_faults()
        t0 = time.perf_counter()
        out = fn(arg)
        _sync(device)
        times.append(time.perf_counter() - t0)
        faults += _minor_faults() - f0
        del out, arg
    return times, faults


# ---------------------------------------------------------------------------------------------- discovery
def discover_mixers() -> Tuple[Dict[str, type], Dict[str, str]]:
    """Import what exists: ``({name: class}, {name: why missing})``."""
    found: Dict[str, type] = {}
    missing: Dict[str, str] = {}
    try:
        import mixkit
    except Exception as e:  # pragma: no cover - the project itself must import
        raise SystemExit(f"cannot import mixkit: {e!r}")
    for name, modules in MIXER_MODULES.items():
        cls = getattr(mixkit, name, None)
        why = []
        for mod in ([] if cls is not None else modules):
            try:
                m = importlib.import_module(mod)
            except ModuleNotFoundError as e:
                why.append(f"{mod}: not found" if e.name == mod else f"{mod}: {e!r}")
                continue
            except Exception as e:  # a module being written may be broken for a while
                why.append(f"{mod}: {type(e).__name__}: {e}")
                continue
            cls = getattr(m, name, None)
            if cls is not None:
                break
            why.append(f"{mod}: no {name}")
        if cls is None:
            missing[name] = "; ".join(why) or "not found"
        else:
            found[name] = cls
    return found, missing


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_peers() -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Peer entry points that load here: ``({key: object}, {key: note})``; the note says how or why not."""
    peers: Dict[str, Any] = {}
    notes: Dict[str, str] = {}
    # timm: its package __init__ imports torchvision; when that fails, its mixup.py (numpy + torch
    # only) is loaded on its own from the installed package.
    try:
        from timm.data import Mixup
        peers["timm"] = Mixup
        notes["timm"] = f"timm {_version('timm')}"
    except Exception as e:
        spec = importlib.util.find_spec("timm")
        path = Path(spec.origin).parent / "data" / "mixup.py" if spec and spec.origin else None
        if path is not None and path.exists():
            try:
                ms = importlib.util.spec_from_file_location("_timm_mixup_standalone", path)
                mod = importlib.util.module_from_spec(ms)
                ms.loader.exec_module(mod)
                peers["timm"] = mod.Mixup
                notes["timm"] = (f"timm {_version('timm')} (timm.data.mixup loaded standalone: `import timm` "
                                 f"failed with {type(e).__name__}: {str(e)[:80]})")
            except Exception as e2:
                notes["timm"] = f"not loadable: {type(e2).__name__}: {e2}"
        else:
            notes["timm"] = f"not installed ({type(e).__name__}: {str(e)[:80]})"
    try:
        from torchvision.transforms import v2
        peers["torchvision"] = v2
        notes["torchvision"] = f"torchvision {_version('torchvision')}"
    except Exception as e:
        notes["torchvision"] = (f"not loadable here ({type(e).__name__}: {str(e)[:100]})" if _version("torchvision")
                                else "not installed")
    try:
        from kornia.augmentation import RandomCutMixV2, RandomMixUpV2
        peers["kornia"] = (RandomMixUpV2, RandomCutMixV2)
        notes["kornia"] = f"kornia {_version('kornia')}"
    except Exception as e:
        notes["kornia"] = f"not available ({type(e).__name__}: {str(e)[:100]})"
    try:
        import fmix_official_numpy
        peers["fmix"] = fmix_official_numpy
        notes["fmix"] = "numpy re-statement of the official generator (benchmarks/fmix_official_numpy.py)"
    except Exception as e:
        notes["fmix"] = f"not available ({type(e).__name__}: {e})"
    return peers, notes


def our_fmix_mask_fn(fmix_cls: Optional[type]) -> Tuple[Optional[Callable], str]:
    """mixkit's FMix mask construction for ``n`` masks: ``fn(n, sizes, generator, device) -> masks``.

    What ``FMix`` does before blending: ``n`` Beta(1, 1) lambdas, then ``mixkit.masks.fourier.fmix_masks``
    (batched low-frequency images + exact top-k threshold) as boolean masks -- the same work as the
    official generator (lambda, spectrum, inverse FFT, threshold). When that function is missing the
    whole ``FMix.mix`` call (mask and blend) is timed instead, which can only overstate mixkit's cost.
    """
    try:
        from mixkit import sampling
        from mixkit.masks import fourier
        masks = fourier.fmix_masks
    except Exception:
        masks = None
    if masks is not None:
        def fn(n, sizes, generator, device):
            lam = sampling.sample_beta(1.0, 1.0, (n,), generator).to(device)
            return masks(n, sizes, lam, 3.0, 0.0, generator=generator, device=device, dtype=torch.bool)
        return fn, "beta draws + masks.fourier.fmix_masks, bool"
    if fmix_cls is not None:
        return None, "FMix.mix: mask construction and blend together"
    return None, ""


# ---------------------------------------------------------------------------------------------- cases
@dataclass
class Row:
    group: str        # e.g. "MixUp", "floor", "FMix masks x128", "where the time goes"
    mode: str         # batch / sample / -
    impl: str         # who: "mixkit", "timm elem", ...
    stat: Optional[Stat] = None
    note: str = ""
    ours: bool = False
    ref: Optional[Tuple[str, str]] = None  # (group, mode) of the mixkit row this peer compares with
    table: str = "main"  # "main" or "breakdown"
    fn: Optional[Callable[[Any], Any]] = field(default=None, repr=False)
    setup: Optional[Callable[[], Any]] = field(default=None, repr=False)
    times: List[float] = field(default_factory=list, repr=False)
    faults: int = 0  # minor page faults inside the timed calls (CPU memory first touched)

    @property
    def faults_per_call(self) -> Optional[float]:
        return self.faults / len(self.times) if self.times else None


def _fresh_gen(device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(SEED)
    return g


def _seed_globals() -> None:
    np.random.seed(SEED)
    random.seed(SEED)
    torch.manual_seed(SEED)


def build_cases(size: int, batch: int, num_classes: int, device: torch.device, mixers: Dict[str, type],
                peers: Dict[str, Any]) -> List[Row]:
    """Every timed case for one image size, as rows holding the callable to time."""
    rows: List[Row] = []
    gen_data = torch.Generator().manual_seed(1234)
    x = torch.rand(batch, 3, size, size, generator=gen_data).to(device)
    y = torch.randint(0, num_classes, (batch,), generator=gen_data).to(device)

    def case(row: Row, fn, setup=None, seed_globals=False) -> None:
        if seed_globals:  # peers draw from the global RNGs: seed them when the case first runs
            first = [True]

            def fn_seeded(a, fn=fn):
                if first[0]:
                    first[0] = False
                    _seed_globals()
                return fn(a)
            row.fn = fn_seeded
        else:
            row.fn = fn
        row.setup = setup
        rows.append(row)

    # ---- floor -------------------------------------------------------------------------------
    perm = torch.randperm(batch, generator=torch.Generator().manual_seed(7)).to(device)
    xp = x.index_select(0, perm)
    w = torch.rand(batch, generator=torch.Generator().manual_seed(8)).to(device).view(-1, 1, 1, 1)
    out = torch.empty_like(x)
    case(Row("floor", "-", "lerp(xp, x, w, out=out)"), lambda _: torch.lerp(xp, x, w, out=out))
    # the same pass returning a new batch, as any mixer must (it pays for the fresh output's pages)
    case(Row("floor (new output)", "-", "lerp(xp, x, w)"), lambda _: torch.lerp(xp, x, w))

    # ---- mixkit mixers -------------------------------------------------------------------------
    for name, cls in mixers.items():
        for mode in MODES:
            try:
                mixer = cls(mode=mode, num_classes=num_classes)
            except Exception as e:
                rows.append(Row(name, mode, "mixkit", ours=True, note=f"cannot construct: {type(e).__name__}: {e}"))
                continue
            g = _fresh_gen(device)
            case(Row(name, mode, "mixkit", ours=True), lambda _, m=mixer, g=g: m(x, y, generator=g))
            g2 = _fresh_gen(device)
            case(Row(name, mode, "mixkit .mix() (no targets)", note="diagnostic"),
                 lambda _, m=mixer, g=g2: m.mix(x, generator=g))

    # ---- peers ---------------------------------------------------------------------------------
    def clone_x():
        return x.clone()

    if "timm" in peers:
        Mixup = peers["timm"]
        for tmode, mode in (("batch", "batch"), ("elem", "sample")):
            for group, kw in (("MixUp", dict(mixup_alpha=1.0, cutmix_alpha=0.0)),
                              ("CutMix", dict(mixup_alpha=0.0, cutmix_alpha=1.0))):
                if batch % 2:
                    rows.append(Row(group, mode, f"timm {tmode}", note="timm needs an even batch", ref=(group, mode)))
                    continue
                m = Mixup(mode=tmode, label_smoothing=0.0, num_classes=num_classes, prob=1.0, **kw)
                case(Row(group, mode, f"timm {tmode}", ref=(group, mode)), lambda xc, m=m: m(xc, y), clone_x,
                     seed_globals=True)
    if "torchvision" in peers:
        v2 = peers["torchvision"]
        for group, tcls in (("MixUp", v2.MixUp), ("CutMix", v2.CutMix)):
            m = tcls(alpha=1.0, num_classes=num_classes)
            case(Row(group, "batch", "torchvision v2", ref=(group, "batch")), lambda _, m=m: m(x, y), seed_globals=True)
    if "kornia" in peers:
        KMix, KCut = peers["kornia"]
        for mode, same in (("batch", True), ("sample", False)):
            for group, make in (("MixUp", lambda s: KMix(p=1.0, same_on_batch=s, data_keys=["input", "class"])),
                                ("CutMix", lambda s: KCut(p=1.0, same_on_batch=s, use_correct_lambda=True,
                                                          data_keys=["input", "class"]))):
                impl = "kornia same_on_batch" if same else "kornia"
                try:
                    m = make(same).to(device)
                except Exception as e:
                    rows.append(Row(group, mode, impl, note=f"cannot construct: {e}", ref=(group, mode)))
                    continue
                case(Row(group, mode, impl, ref=(group, mode)), lambda _, m=m: m(x, y), seed_globals=True)

    # ---- FMix masks: ours vs the official numpy generator ----------------------------------------
    fn, how = our_fmix_mask_fn(mixers.get("FMix"))
    sizes = (size, size)
    for mode, n in (("batch", 1), ("sample", batch)):
        label = f"FMix masks x{n}"
        if fn is not None:
            g = _fresh_gen(device)
            case(Row(label, mode, "mixkit", ours=True, note=how), lambda _, n=n, g=g: fn(n, sizes, g, device))
        elif "FMix" in mixers:
            mixer = mixers["FMix"](mode=mode)
            g = _fresh_gen(device)
            case(Row(label, mode, "mixkit", ours=True, note=how), lambda _, m=mixer, g=g: m.mix(x, generator=g))
        if "fmix" in peers:
            off = peers["fmix"]
            rng = np.random.default_rng(SEED)
            if n == 1:
                def official(_, rng=rng):
                    lam, mask = off.sample_mask(1.0, 3.0, sizes, rng)
                    return torch.from_numpy(mask).float().to(device)
                impl = "official (numpy), 1 mask"
            else:
                def official(_, rng=rng, n=n):
                    lams, masks = off.sample_masks_looped(n, 1.0, 3.0, sizes, rng)
                    return torch.from_numpy(masks).float().to(device)
                impl = f"official (numpy), looped x{n}"
            case(Row(label, mode, impl, ref=(label, mode)), official)

    # ---- where the time goes (sample-mode MixUp / CutMix pieces, mixkit internals) --------------
    def piece(impl: str, fn, note: str = "") -> None:
        case(Row("pieces", "sample", impl, note=note, table="breakdown"), fn)

    piece("x.index_select(0, perm) (gather, fresh output)", lambda _: x.index_select(0, perm))
    piece("lerp(xp, x, w) (fresh output)", lambda _: torch.lerp(xp, x, w))
    piece("index_select, then lerp_ into it (1 fresh buffer)", lambda _: x.index_select(0, perm).lerp_(x, w))
    try:
        from mixkit import sampling
        from mixkit.masks import box
        from mixkit.targets import soft_targets
        g = _fresh_gen(device)
        lam = torch.rand(batch, generator=torch.Generator().manual_seed(9))
        lo, hi = box.sample_boxes((size, size), lam)
        keep = ~box.box_mask(lo.to(device), hi.to(device), (size, size))
        piece(f"sampling.sample_beta(1, 1, ({batch},))", lambda _: sampling.sample_beta(1.0, 1.0, (batch,), g))
        piece(f"sampling.permutation({batch})", lambda _: sampling.permutation(batch, g))
        piece("box.sample_boxes + box_mask + invert (CutMix share map)",
              lambda _: ~box.box_mask(*(t.to(device) for t in box.sample_boxes((size, size), lam, g)), (size, size)))
        piece("where(keep, x, xp) (fresh output)", lambda _: torch.where(keep, x, xp))
        piece("index_select, then where(keep, x, xp, out=xp)",
              lambda _: (lambda q: torch.where(keep, x, q, out=q))(x.index_select(0, perm)))
        if "MixUp" in mixers:
            res = mixers["MixUp"](mode="sample", num_classes=num_classes).mix(x, generator=_fresh_gen(device))
            piece("soft_targets(y, res, K)", lambda _: soft_targets(y, res, num_classes))
            tiny = torch.rand(2, 3, 4, 4, device=device)
            ytiny = torch.zeros(2, dtype=torch.long, device=device)
            for nm in ("MixUp", "CutMix"):
                if nm in mixers:
                    mt = mixers[nm](mode="sample", num_classes=num_classes)
                    gt = _fresh_gen(device)
                    piece(f"{nm}(x, y) on a (2, 3, 4, 4) batch", lambda _, m=mt, g=gt: m(tiny, ytiny, generator=g),
                          note="fixed per-call cost")
    except Exception as e:  # internals moved: the breakdown is a diagnostic only
        rows.append(Row("pieces", "sample", "mixkit internals", note=f"skipped: {type(e).__name__}: {e}", table="breakdown"))
    return rows


def run_size(size: int, batch: int, num_classes: int, device: torch.device, cfg: Settings,
             mixers: Dict[str, type], peers: Dict[str, Any], log: Callable[[str], None]) -> List[Row]:
    rows = build_cases(size, batch, num_classes, device, mixers, peers)
    for r in range(cfg.rounds):
        for row in rows:
            if row.fn is None or row.note.startswith("error"):
                continue
            try:
                t, f = measure(row.fn, row.setup, device, cfg)
                row.times += t
                row.faults += f
            except Exception as e:
                row.note = f"error: {type(e).__name__}: {str(e)[:120]}"
                row.times = []
                log(f"  [{size:>4}px] {row.group:<16} {row.mode:<6} {row.impl[:50]:<50} {row.note}")
                continue
            if r == cfg.rounds - 1:
                log(f"  [{size:>4}px] {row.group:<16} {row.mode:<6} {row.impl[:50]:<50} "
                    f"{statistics.median(row.times) * 1e3:10.3f} ms  (n={len(row.times)}) {row.note}")
    for row in rows:
        if row.times:
            row.stat = Stat.of(row.times)
        row.fn = row.setup = None  # free the closures (they hold the batches)
    gc.collect()
    return rows


# ---------------------------------------------------------------------------------------------- report
def _fmt(v: Optional[float], spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _ours(rows: List[Row], group: str, mode: str) -> Optional[Row]:
    for r in rows:
        if r.ours and r.group == group and r.mode == mode and r.stat is not None:
            return r
    return None


def _floor(rows: List[Row], group: str = "floor") -> Optional[Stat]:
    return next((r.stat for r in rows if r.group == group), None)


def table(rows: List[Row]) -> str:
    """The main table: floor, then each method's batch and sample rows (mixkit first, then peers)."""
    floor = _floor(rows)
    lines = ["| method | mode | implementation | median ms | IQR ms | min ms | n | faults/call | x floor | ours / this |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    main = [r for r in rows if r.table == "main"]
    order: List[Tuple[str, str]] = []
    for r in main:
        if (r.group, r.mode) not in order:
            order.append((r.group, r.mode))
    for key in order:
        for r in main:
            if (r.group, r.mode) != key:
                continue
            st = r.stat
            xf = st.median / floor.median if st and floor else None
            ratio = None
            if r.ref and st:
                o = _ours(rows, *r.ref)
                ratio = o.stat.median / st.median if o else None
            impl = f"**{r.impl}**" if r.ours else r.impl
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {r.group} | {r.mode} | {impl}{note} | {_fmt(st and st.ms)} | {_fmt(st and st.iqr_ms)} | "
                         f"{_fmt(st and st.best * 1e3)} | {st.n if st else '-'} | {_fmt(r.faults_per_call, '.0f')} | "
                         f"{_fmt(xf, '.2f')} | {_fmt(ratio, '.2f')} |")
    return "\n".join(lines)


def breakdown_table(rows: List[Row]) -> str:
    floor = _floor(rows)
    lines = ["| piece | median ms | min ms | faults/call | x floor |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        if r.table != "breakdown":
            continue
        st = r.stat
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.impl}{note} | {_fmt(st and st.ms)} | {_fmt(st and st.best * 1e3)} | "
                     f"{_fmt(r.faults_per_call, '.0f')} | {_fmt(st.median / floor.median if st and floor else None, '.2f')} |")
    return "\n".join(lines)


def targets(rows_by_size: Dict[int, List[Row]]) -> List[str]:
    """The issue's targets as PASS/FAIL lines (SKIP where a peer is missing)."""
    out = []

    def line(ok: Optional[bool], text: str) -> None:
        out.append(f"{'SKIP' if ok is None else ('PASS' if ok else 'FAIL')}  {text}")

    for size, rows in rows_by_size.items():
        floor = _floor(rows)
        limit = 3.0 if size <= 32 else (1.5 if size >= 224 else None)
        for group in ("MixUp", "CutMix"):
            o = _ours(rows, group, "sample")
            if o is None:
                line(None, f"[{size}px] sample {group}: not measured")
                continue
            if limit is not None and floor is not None:
                r = o.stat.median / floor.median
                line(r <= limit, f"[{size}px] sample {group}: {r:.2f}x floor (target <= {limit}x)")
                floor_new = _floor(rows, "floor (new output)")
                if floor_new is not None:
                    r = o.stat.median / floor_new.median
                    line(r <= limit, f"[{size}px] sample {group}: {r:.2f}x the floor with a new output (target <= {limit}x)")
            peers = [r for r in rows if r.ref == (group, "sample") and r.stat is not None]
            if not peers:
                line(None, f"[{size}px] sample {group}: no per-sample peer installed")
            for p in peers:
                r = o.stat.median / p.stat.median
                line(r < 1.0, f"[{size}px] sample {group}: ours / {p.impl} = {r:.2f} (target < 1)")
            ob = _ours(rows, group, "batch")
            tv = [r for r in rows if r.ref == (group, "batch") and r.impl == "torchvision v2" and r.stat is not None]
            if ob is None:
                line(None, f"[{size}px] batch {group}: mixkit's batch mode not measured")
            elif not tv:
                line(None, f"[{size}px] batch {group}: torchvision v2 not available here")
            else:
                r = ob.stat.median / tv[0].stat.median
                line(r <= 1.2, f"[{size}px] batch {group}: ours / torchvision v2 = {r:.2f} (target <= 1.2)")
        label = [r for r in rows if r.group.startswith("FMix masks") and r.mode == "sample"]
        o = next((r for r in label if r.ours and r.stat), None)
        off = next((r for r in label if not r.ours and r.stat), None)
        if o is None or off is None:
            line(None, f"[{size}px] per-sample FMix masks: {'mixkit FMix missing' if o is None else 'official re-statement missing'}")
        else:
            r = o.stat.median / off.stat.median
            line(r < 1.0, f"[{size}px] per-sample FMix masks: ours / official looped = {r:.2f} (target < 1)")
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _thp() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        return "unknown"


def _mixkit_path() -> str:
    import mixkit
    p = Path(mixkit.__file__).resolve().parent
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def header(args, device: torch.device, notes: Dict[str, str], missing: Dict[str, str], found: Dict[str, type],
           cfg: Settings, batches: Dict[int, int], num_classes: Dict[int, int], load0, load1) -> str:
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    env = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    env += "THP_MEM_ALLOC_ENABLE=1 " if os.environ.get("THP_MEM_ALLOC_ENABLE") == "1" else ""
    cmd = env + "python benchmarks/speed.py " + shlex.join(sys.argv[1:])
    lines = [
        f"- command: `{cmd.strip()}` (interpreter: `{sys.executable}`)",
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; python {platform.python_version()}; "
        f"torch {torch.__version__}; numpy {np.__version__}",
        f"- device: {dev}; CPU: {cpu_model()} ({os.cpu_count()} logical cores); torch threads: {torch.get_num_threads()}",
        f"- load average (1 min) at start / end: {load0:.2f} / {load1:.2f} (other work on the machine inflates times; "
        "ratios within one run are what to read)",
        "- batches: " + ", ".join(f"({b}, 3, {s}, {s}) float32, {num_classes[s]} classes" for s, b in batches.items()),
        f"- timing: {cfg.rounds} round(s) over the whole case list; in each, a case gets {cfg.warmup} warm-up call(s) "
        f"and up to {cfg.repeats} timed calls (fewer for slow cases, at least 3 unless asked for fewer); the median, "
        f"IQR (inter-quartile range) and min are over all its timed calls (`n`), each timed alone",
        f"- memory: transparent huge pages `{_thp()}`; THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')} "
        "(see benchmarks/README.md: fresh > 32 MiB outputs are page-faulted in on every call)",
        "- mixkit mixers found: " + (", ".join(found) or "none") + f" (from `{_mixkit_path()}`)",
    ]
    if missing:
        lines.append("- mixkit mixers not found: " + "; ".join(f"{k} ({v})" for k, v in missing.items()))
    lines.append("- peers: " + "; ".join(f"{k}: {v}" for k, v in notes.items()))
    lines.append("- `faults/call` = minor page faults inside the timed call (memory touched for the first time: a "
                 "fresh output that malloc had to map); `x floor` = median / floor median; `ours / this` = the mixkit row of the same method and mode "
                 "divided by this peer row (below 1: mixkit is faster)")
    return "\n".join(lines)


def write_section(path: Path, key: str, body: str) -> None:
    """Replace (or append) the section ``key`` of the markdown file ``path``, atomically."""
    begin, end = f"<!-- BEGIN speed section: {key} -->", f"<!-- END speed section: {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else "# mixkit speed benchmark\n\n"
    if begin in old and end in old:
        i, j = old.index(begin), old.index(end) + len(end)
        new = old[:i] + block.rstrip("\n") + old[j:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(new)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="32,224", help="comma-separated image sizes (default 32,224)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: CPU, plus CUDA when available (default)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed calls per case in each round (default 10; 3 with --quick)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="passes over the whole case list, interleaved so that load changes hit every case alike "
                         "(default 3; 1 with --quick)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all logical cores)")
    ap.add_argument("--batch", type=int, default=None, help="batch size for every size (default 128 for <= 64 px, else 64)")
    ap.add_argument("--out", default=None, help="markdown file to write the results into (a section of it)")
    ap.add_argument("--section", default=None, help="section key in --out (default: torch version and device)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a smaller time budget per case")
    args = ap.parse_args(argv)
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) < 2:
        ap.error("--sizes needs at least one size >= 2")
    if args.repeats is not None and args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.batch is not None and args.batch < 2:
        ap.error("--batch must be >= 2")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    repeats = args.repeats or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)
    cfg = Settings(repeats=repeats, warmup=1 if (args.quick or repeats <= 2) else 2, rounds=rounds,
                   budget_s=0.3 if args.quick else 1.5)
    if args.device == "auto":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    elif args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here", file=sys.stderr)
        return 2
    else:
        devices = [torch.device(args.device)]

    found, missing = discover_mixers()
    peers, notes = load_peers()
    batches = {s: (args.batch or (128 if s <= 64 else 64)) for s in args.size_list}
    num_classes = {s: (100 if s <= 64 else 1000) for s in args.size_list}
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, mixers: {', '.join(found)}")
    for k, v in notes.items():
        log(f"  peer {k}: {v}")

    for device in devices:
        load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        rows_by_size: Dict[int, List[Row]] = {}
        for s in args.size_list:
            rows_by_size[s] = run_size(s, batches[s], num_classes[s], device, cfg, found, peers, log)
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        key = args.section or f"torch {torch.__version__} on {device.type}"
        title = args.section or f"torch {torch.__version__} on {device.type}"
        parts = [f"## {title}", "",
                 header(args, device, notes, missing, found, cfg, batches, num_classes, load0, load1), ""]
        for s, rows in rows_by_size.items():
            parts += [f"### {batches[s]} x 3 x {s} x {s}", "", table(rows), "",
                      f"Where the time goes (sample mode, {batches[s]} x 3 x {s} x {s}; mixkit internals, diagnostic):",
                      "", breakdown_table(rows), ""]
        tl = targets(rows_by_size)
        parts += ["### Targets", "", "```", *tl, "```", ""]
        md = "\n".join(parts)
        print("\n" + md)
        if args.out:
            write_section(Path(args.out), key, md)
            print(f"wrote section {key!r} of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
