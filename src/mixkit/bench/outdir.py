"""The output folder of a benchmark: the per-run state is the truth, ``results.jsonl`` is rebuilt from it.

::

    state/<method>-s<seed>.jsonl   every epoch record of one run (rewritten atomically after each epoch)
    state/<method>-s<seed>.pt      the run's checkpoint (model, optimiser, schedule, records)
    results.jsonl                  every run's records, one file, rebuilt from the state files
    throughput.json                the timed throughput pass (:mod:`mixkit.bench.throughput`)

Because ``results.jsonl`` is derived, a damaged one (cut short, edited) is rebuilt on the next run of
the command. A folder holds one protocol (one run key): :func:`check_same_config` refuses to add runs
of another configuration, naming the settings that differ.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from .config import BenchConfig, config_differences
from .io import as_json, atomic_write_jsonl, read_jsonl

__all__ = ["ConfigMismatchError", "RESULTS", "THROUGHPUT", "read_runs", "write_results", "check_same_config",
           "discard_results"]

RESULTS = "results.jsonl"
THROUGHPUT = "throughput.json"

Runs = Dict[Tuple[str, Any], List[dict]]


class ConfigMismatchError(ValueError):
    """The output folder holds runs of another configuration (the message names the differences)."""


def read_runs(out) -> Runs:
    """``{(method, seed): records}`` of the folder: each run's ``state/*.jsonl``, and for runs without a
    state file (a folder written by hand or by an older version) their lines of ``results.jsonl``."""
    out = Path(out)
    runs: Runs = {}
    for r in read_jsonl(out / RESULTS):
        if isinstance(r, dict) and "method" in r and "seed" in r:
            runs.setdefault((r["method"], r["seed"]), []).append(r)
    state = out / "state"
    for p in sorted(state.glob("*.jsonl")) if state.is_dir() else ():
        recs = [r for r in read_jsonl(p) if isinstance(r, dict) and "method" in r and "seed" in r]
        if recs:
            runs[(recs[0]["method"], recs[0]["seed"])] = recs
    return runs


def write_results(out, runs: Runs, order: Sequence[Tuple[str, Any]]) -> Path:
    """Rewrite ``results.jsonl`` (atomically): the runs of ``order`` first, then any others of the folder."""
    recs = [r for k in order if k in runs for r in runs[k]]
    recs += [r for k, v in runs.items() if k not in set(order) for r in v]
    return atomic_write_jsonl(Path(out) / RESULTS, recs)


def check_same_config(out, runs: Runs, cfg: BenchConfig, planned_params: Mapping[str, Dict[str, Any]]) -> None:
    """Raise :class:`ConfigMismatchError` when a run of the folder was trained under another protocol than
    ``cfg`` (another run key), or a method of the plan with other hyper-parameters than ``planned_params``
    (``{method: effective params}``)."""
    key, new = cfg.run_key(), cfg.to_dict()
    diffs: List[str] = []
    for (method, _seed), recs in runs.items():
        last = recs[-1]
        if last.get("run_key") != key:
            found = config_differences(last["config"], new) if isinstance(last.get("config"), dict) else []
            diffs += found or [f"config hash: {last.get('run_key')!r} -> {key!r}"]
        elif method in planned_params and as_json(last.get("params", {})) != as_json(planned_params[method]):
            diffs.append(f"{method} hyper-parameters: {_short(last.get('params'))} -> {_short(planned_params[method])}")
    diffs = list(dict.fromkeys(diffs))
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise ConfigMismatchError(
            f"--out {out} holds results of another configuration ({shown}); a report never averages runs of "
            f"different configurations: write this one elsewhere with --out NEW_DIR, or pass --overwrite to "
            f"discard the earlier results and checkpoints in {out}")


def _short(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def discard_results(out) -> None:
    """Delete what the benchmark wrote into ``out``: ``results.jsonl``, ``throughput.json`` and the state
    (records and checkpoint) of every run found there (``--overwrite``)."""
    out = Path(out)
    for name in (RESULTS, THROUGHPUT):
        (out / name).unlink(missing_ok=True)
    state = out / "state"
    if state.is_dir():
        for p in list(state.glob("*.jsonl")) + list(state.glob("*.pt")):
            p.unlink()
