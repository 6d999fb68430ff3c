"""What may make the runs of one report incomparable, and the one configuration a report shows.

A report never averages runs of different configurations. The records are grouped by their config
hash (the ``run_key`` the trainer writes; for a record without one, the same hash computed from its
``config``, :func:`mixkit.bench.config.protocol_key`); the group with the most finished runs is
reported (ties: the group written last), and every other group is left out and named in the report's
warning block with the settings in which it differs. Records that differ in their environment (mixkit,
commit, torch, device, threads, world size) or in their realised setup (data sizes, parameter count,
amp, ...) are kept, with a warning.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..config import config_differences, protocol_key
from .values import _dict, _sort_seeds

#: environment keys compared between records, and those that bear on throughput
ENV_KEYS = ("mixkit", "git", "torch", "device", "threads", "world_size")
_SPEED_ENV = ("device", "threads", "world_size")
#: realised-setup keys compared between records (what the trainer records in ``setup``)
SETUP_KEYS = ("dataset", "n_train", "n_test", "input_shape", "model_params", "amp", "channels_last", "threads", "device")


def config_id(rec: Mapping[str, Any]) -> Optional[str]:
    """The config hash of a record: its ``run_key``, else the hash of its ``config``, else None."""
    if rec.get("run_key") is not None:
        return str(rec["run_key"])
    if isinstance(rec.get("config"), dict):
        return protocol_key(rec["config"])
    return None


def one_configuration(records: Sequence[Mapping[str, Any]]) -> Tuple[List[Mapping[str, Any]], List[str], List[Dict[str, Any]]]:
    """``(shown, warnings, excluded)``: the records of the configuration the report shows (records without
    any config hash go with it), a warning per configuration left out, and ``{"config", "runs",
    "differences"}`` for each of them."""
    groups: Dict[Optional[str], List[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault(config_id(rec), []).append(rec)
    ids = [g for g in groups if g is not None]
    if len(ids) <= 1:
        return list(records), [], []

    def finished(group) -> int:
        return len({(r.get("method"), r.get("seed")) for r in groups[group] if r.get("final")})

    last = {g: max(i for i, r in enumerate(records) if config_id(r) == g) for g in ids}
    main = max(ids, key=lambda g: (finished(g), last[g]))
    main_cfg = next((r["config"] for r in reversed(groups[main]) if isinstance(r.get("config"), dict)), None)
    shown = [r for r in records if config_id(r) in (main, None)]
    warnings = [f"the records come from {len(ids)} different configurations: this report shows only the "
                f"{_runs_text(groups[main])} of config `{main}`; the others are left out, never averaged with them."]
    excluded = []
    for g in ids:
        if g == main:
            continue
        cfg = next((r["config"] for r in reversed(groups[g]) if isinstance(r.get("config"), dict)), None)
        diffs = config_differences(cfg, main_cfg) if cfg is not None and main_cfg is not None else []
        excluded.append({"config": g, "runs": _runs_text(groups[g]), "differences": diffs})
        warnings.append(f"left out: the {_runs_text(groups[g])} of config `{g}`"
                        + (f" (differs in {'; '.join(diffs)})" if diffs else "") + ".")
    return shown, warnings, excluded


def _runs_text(recs: Sequence[Mapping[str, Any]]) -> str:
    by_method: Dict[str, set] = {}
    for r in recs:
        if isinstance(r.get("method"), str) and r.get("seed") is not None:
            by_method.setdefault(r["method"], set()).add(r["seed"])
    n = sum(len(s) for s in by_method.values())
    parts = [f"{m} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, _sort_seeds(s)))})" for m, s in by_method.items()]
    return f"{n} run{'s' if n != 1 else ''}: {', '.join(parts)}" if parts else "0 runs"


def difference_warnings(records: Sequence[Mapping[str, Any]]) -> List[str]:
    """A warning for every environment or realised-setup key whose value differs between ``records``."""
    out = []
    for key in ENV_KEYS:
        vals = sorted({str(_dict(r.get("env")).get(key)) for r in records if key in _dict(r.get("env"))})
        if len(vals) > 1:
            out.append(f"env {key} differs between records ({', '.join(vals)})"
                       + ("; throughput numbers may not be comparable." if key in _SPEED_ENV
                          else "; the code or library changed during the run."))
    for key in SETUP_KEYS:
        vals = sorted({str(_dict(r.get("setup")).get(key)) for r in records if key in _dict(r.get("setup"))})
        if len(vals) > 1:
            out.append(f"the runs' setup {key} differs between records ({', '.join(vals)}).")
    return out
