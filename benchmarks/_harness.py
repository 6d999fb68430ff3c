"""Shared timing machinery of the benchmark scripts: interleaved rounds, ratios within each round,
the machine's page-fault regime, peak memory in a fresh process, and atomic sections of a markdown page.

A *round* runs every case once, in an order shuffled per round (seeded), each case getting its
warm-up call(s) and then ``calls`` timed calls whose median is the case's time **in that round**. A
ratio ``a / b`` is taken round by round (``t_r(a) / t_r(b)``, both from round ``r``), and reported as
the median and inter-quartile range of those per-round ratios: a load change on a shared machine hits
both sides of one ratio alike, which pooling raw samples over the whole run would not give. With an
anchor (the floor), the anchor is also timed right before every case, and each case is divided by that
neighbouring anchor time first, so a load change within a round cancels as well.
"""
from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch

THP_PATH = Path("/sys/kernel/mm/transparent_hugepage/enabled")


# ---------------------------------------------------------------------------------------------- statistics
@dataclass
class Dist:
    """Median and quartiles of a list of values (per-round times or per-round ratios)."""
    median: float
    q1: float
    q3: float
    n: int

    @staticmethod
    def of(values: Sequence[float]) -> Optional["Dist"]:
        v = sorted(x for x in values if x == x)
        if not v:
            return None
        if len(v) >= 4:
            q = statistics.quantiles(v, n=4)
            q1, q3 = q[0], q[2]
        else:
            q1, q3 = v[0], v[-1]
        return Dist(statistics.median(v), q1, q3, len(v))

    def fmt(self, unit: str = "x", digits: int = 2) -> str:
        return f"{self.median:.{digits}f}{unit} (IQR {self.q1:.{digits}f}–{self.q3:.{digits}f})"


# ---------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One timed callable: ``fn(setup())``; ``setup`` (a fresh clone for peers that write into their
    input, say) runs outside the timed region."""
    key: str
    fn: Optional[Callable[[Any], Any]]
    setup: Optional[Callable[[], Any]] = None
    note: str = ""
    calls: int = 0                      # timed calls per round (fixed after the first round)
    rounds: List[float] = field(default_factory=list)  # the case's median time in each round (s)
    faults: List[float] = field(default_factory=list)  # minor page faults per timed call, per round
    ref: List[float] = field(default_factory=list)     # the anchor's time measured just before, per round
    error: str = ""

    @property
    def time(self) -> Optional[Dist]:
        return Dist.of(self.rounds)

    @property
    def faults_per_call(self) -> Optional[float]:
        return statistics.median(self.faults) if self.faults else None


def sync(device: Union[torch.device, str, None]) -> None:
    """Wait until ``device`` has finished what was queued on it (CUDA work is asynchronous; a CPU: nothing)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: Union[torch.device, str, None]) -> float:
    """``time.perf_counter()`` once ``device`` has finished its queued work: the clock of a timed region."""
    sync(device)
    return time.perf_counter()


def minor_faults() -> int:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):  # not on every platform
        return 0


#: the clock of every timed call: ``time.perf_counter`` (wall) or ``time.process_time`` (CPU time of the
#: process: with one torch thread it leaves out the time the process waited for a core on a loaded machine,
#: which otherwise inflates long calls more than short ones). Set with :func:`set_clock`.
CLOCK = {"name": "wall", "fn": time.perf_counter}


def set_clock(name: str) -> None:
    if name not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {name!r}")
    CLOCK.update(name=name, fn=time.perf_counter if name == "wall" else time.process_time)


def _one(case: Case, device) -> tuple:
    arg = case.setup() if case.setup else None
    sync(device)
    clock = CLOCK["fn"]
    f0 = minor_faults()
    t0 = clock()
    out = case.fn(arg)
    sync(device)
    dt = clock() - t0
    df = minor_faults() - f0
    del out, arg
    return dt, df


def _time(c: Case, device, warmup: int, max_calls: int, budget_s: float) -> tuple:
    est = None
    for _ in range(warmup):
        est, _f = _one(c, device)
    if not c.calls:
        c.calls = max(1, min(max_calls, int(budget_s / max(est or 1e-6, 1e-6))))
    ts, fs = zip(*(_one(c, device) for _ in range(c.calls)))
    return statistics.median(ts), sum(fs) / len(fs)


def run_rounds(cases: List[Case], rounds: int, max_calls: int, budget_s: float, warmup: int = 1,
               device: Optional[torch.device] = None, seed: int = 0, anchor: Optional[Case] = None,
               log: Optional[Callable[[str], None]] = None) -> None:
    """Time every case in ``rounds`` interleaved rounds (see the module docstring). The number of timed
    calls per round is fixed from the first round's warm-up: ``max_calls``, fewer for a case whose call
    takes more than ``budget_s / max_calls``, at least 1. With an ``anchor`` (a floor), the anchor is
    timed again just before every other case, into ``case.ref``: :func:`ratio` then divides each case by
    the anchor time measured next to it, so that a load change within a round cancels too."""
    order = [c for c in cases if c.fn is not None and not c.error]
    rng = random.Random(seed)
    for r in range(rounds):
        rng.shuffle(order)
        for c in order:
            if c.error:
                continue
            try:
                ref = _time(anchor, device, warmup, max_calls, budget_s)[0] if anchor is not None and c is not anchor else None
                t, f = _time(c, device, warmup, max_calls, budget_s)
            except Exception as e:  # a peer or a mixer being rewritten may fail: report, go on
                c.error = f"{type(e).__name__}: {str(e)[:120]}"
                c.rounds, c.faults, c.ref = [], [], []
                if log:
                    log(f"  {c.key}: error {c.error}")
                continue
            c.rounds.append(t)
            c.faults.append(f)
            if anchor is not None:
                c.ref.append(t if c is anchor else ref)
        if log:
            log(f"  round {r + 1}/{rounds} done")


def ratio(a: Optional[Case], b: Optional[Case]) -> Optional[Dist]:
    """Per-round ratios ``a / b`` (rounds in which both ran), as a distribution. When both cases carry
    anchor times (``ref``), each is first divided by the anchor time measured next to it:
    ``(a / anchor_a) / (b / anchor_b)``; ``b`` the anchor itself gives ``a / anchor_a``."""
    if a is None or b is None or not a.rounds or not b.rounds or len(a.rounds) != len(b.rounds):
        return None
    if len(a.ref) == len(a.rounds) and len(b.ref) == len(b.rounds):
        na = [x / f for x, f in zip(a.rounds, a.ref)]
        nb = [y / f for y, f in zip(b.rounds, b.ref)]
        return Dist.of([x / y for x, y in zip(na, nb) if y > 0])
    return Dist.of([x / y for x, y in zip(a.rounds, b.rounds) if y > 0])


# ---------------------------------------------------------------------------------------------- environment
def thp_setting() -> str:
    """The kernel's transparent-huge-page mode, e.g. ``always [madvise] never`` (brackets: active)."""
    try:
        return THP_PATH.read_text().strip()
    except OSError:
        return "unknown"


def thp_active() -> str:
    m = re.search(r"\[(\w+)\]", thp_setting())
    return m.group(1) if m else "unknown"


def thp_env() -> bool:
    return os.environ.get("THP_MEM_ALLOC_ENABLE") == "1"


def page_fault_regime() -> str:
    """In words: whether fresh large CPU tensors get huge pages (cheap first touch) or 4 KiB pages."""
    mode = thp_active()
    if mode == "always":
        return "cheap page faults (THP `always`: every large allocation may get huge pages)"
    if mode == "madvise" and thp_env():
        return "cheap page faults (THP `madvise` and THP_MEM_ALLOC_ENABLE=1: torch asks for huge pages)"
    if mode == "madvise":
        return ("expensive page faults (THP `madvise` but THP_MEM_ALLOC_ENABLE unset: a fresh > 32 MiB output "
                "is faulted in 4 KiB pages on every call)")
    return f"expensive page faults (THP `{mode}`: 4 KiB pages only)"


def thp_possible() -> bool:
    return thp_active() in ("always", "madvise")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def loadavg() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# ---------------------------------------------------------------------------------------------- peak memory
_PEAK_CHILD = r"""
import json, re, sys, torch
torch.set_num_threads(1)
sys.path[:0] = json.loads(sys.argv[2])
spec = json.loads(sys.argv[1])
def status():
    s = open("/proc/self/status").read()
    return {k: int(re.search(k + r":\s+(\d+)", s).group(1)) * 1024 for k in ("VmHWM", "VmRSS")}
import importlib
mod = importlib.import_module(spec["module"])
fn = getattr(mod, spec["func"])
call, nbytes = fn(*spec["args"])
call(True)                                   # warm-up on a small batch: libraries and caches loaded
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                             # reset the peak RSS (VmHWM) to the current RSS
s0 = status()
out = call(False)
s1 = status()
print(json.dumps({"extra": s1["VmHWM"] - s0["VmRSS"], "input": nbytes}))
"""


def peak_memory(module: str, func: str, args: Sequence[Any], paths: Sequence[str], timeout: float = 300) -> Dict[str, Any]:
    """Peak extra resident memory of one call, measured in a fresh process, relative to the input.

    ``module.func(*args)`` (importable from ``paths``) returns ``(call, input_bytes)``; ``call(small)``
    runs the workload (``small=True`` for the warm-up). The child sets ``MALLOC_MMAP_THRESHOLD_`` so that
    every buffer above 64 KiB is its own mapping, returned to the system when freed; the peak RSS is reset
    (``/proc/self/clear_refs``) just before the call. Returns ``{"ratio": peak extra / input}`` or
    ``{"error": why}``. The output counts: a mixer returning a new batch is at least 1.0x."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    try:
        proc = subprocess.run([sys.executable, "-c", _PEAK_CHILD, json.dumps({"module": module, "func": func,
                                                                               "args": list(args)}),
                               json.dumps([str(p) for p in paths])], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:160]}
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"ratio": d["extra"] / d["input"], "input": d["input"]}


# ---------------------------------------------------------------------------------------------- op count
def top_level_ops(fn: Callable[[], Any]) -> Optional[int]:
    """Number of top-level ``aten::`` operators one call of ``fn`` dispatches (the profiler's view)."""
    try:
        from torch.profiler import ProfilerActivity, profile
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as p:
            fn()
        return sum(1 for e in p.events() if e.cpu_parent is None and e.name.startswith("aten::"))
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------- markdown
def write_section(path: Path, key: str, body: str, title: str = "") -> None:
    """Replace (or append) the section ``key`` of the markdown file ``path``, atomically."""
    begin, end = f"<!-- BEGIN generated section: {key} -->", f"<!-- END generated section: {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    old = path.read_text() if path.exists() else (title or "# benchmark") + "\n\n"
    if begin in old and end in old:
        i, j = old.index(begin), old.index(end) + len(end)
        new = old[:i] + block + old[j:]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    from mixkit.bench.io import atomic_write_text

    atomic_write_text(path, new)


def read_section(path: Path, key: str) -> Optional[str]:
    begin, end = f"<!-- BEGIN generated section: {key} -->", f"<!-- END generated section: {key} -->"
    try:
        text = path.read_text()
    except OSError:
        return None
    if begin not in text or end not in text:
        return None
    return text[text.index(begin) + len(begin):text.index(end)].strip("\n")
