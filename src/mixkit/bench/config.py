"""Benchmark configuration: one protocol for every method, explicit per-method hyper-parameters.

A config comes from command-line flags or a YAML/TOML file (``mixkit bench --config FILE``); flags given
on the command line override the file. Every field is recorded in ``results.jsonl``.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ["BenchConfig", "PRESETS", "DEFAULT_METHODS", "load_config_file", "config_differences",
           "effective_settings", "protocol_key"]

#: fields that never change a run's numbers: left out of the run key (output, progress, bookkeeping, the
#: plan's method and seed lists, the parallelism, the timed throughput pass). ``method_params`` is left out
#: too: a run's own hyper-parameters are recorded with it (``params``) and compared run by run.
NOT_IN_RUN_KEY = ("out", "progress", "methods", "seeds", "command", "jobs", "method_params", "throughput_steps",
                  "data_placement")

#: fields added after run keys were first recorded, with their default: at the default a field stays out of
#: the key (so a folder trained before the field existed still resumes); set to anything else it enters it
KEY_ONLY_WHEN_SET = {"compile": "off"}

#: ``compile`` choices: what ``torch.compile`` wraps in a run (see :mod:`mixkit.bench.step`)
COMPILE_CHOICES = ("off", "model", "mixer", "all")
#: ``data_placement`` choices: where the training split lives during a run (see :mod:`mixkit.bench.batches`)
PLACEMENTS = ("auto", "host", "device")

#: the default comparison: every hand-crafted mixer and the hidden-layer methods (the saliency methods cost
#: an extra forward/backward per step; add them with --methods)
DEFAULT_METHODS = ("vanilla", "mixup", "cutmix", "fmix", "hmix", "gmix", "resizemix", "smoothmix", "gridmix",
                   "dirichlet_mixup", "manifold_mixup", "patchup")

#: training recipes from the papers (SGD, momentum 0.9). ``milestones`` are fractions of the epochs.
PRESETS: Dict[str, Dict[str, Any]] = {
    # Zhang et al. 2018 (mixup-cifar10): lr 0.1, wd 1e-4, batch 128, 200 ep, /10 at 100 and 150
    "mixup-cifar": dict(lr=0.1, weight_decay=1e-4, batch_size=128, epochs=200, schedule="step",
                        milestones=(0.5, 0.75), gamma=0.1, model="preactresnet18"),
    # Harris et al. (FMix trainer.py): same recipe, PreAct-ResNet-18
    "fmix-cifar": dict(lr=0.1, weight_decay=1e-4, batch_size=128, epochs=200, schedule="step",
                       milestones=(0.5, 0.75), gamma=0.1, model="preactresnet18"),
    # OpenMixup CIFAR tables: CIFAR ResNet-18, batch 100, cosine to 0, wd 1e-4, median of the last 10 epochs
    "openmixup-cifar": dict(lr=0.1, weight_decay=1e-4, batch_size=100, epochs=800, schedule="cosine",
                            model="resnet18", median_last=10),
    # Kim et al. 2020 (PuzzleMix, CIFAR-100 PreAct-ResNet-18): batch 100, lr 0.1, 1200 ep, /10 at 400, 800
    "puzzlemix-cifar": dict(lr=0.1, weight_decay=1e-4, batch_size=100, epochs=1200, schedule="step",
                            milestones=(1 / 3, 2 / 3), gamma=0.1, model="preactresnet18"),
    # sized for 2 CPU cores: the bare `mixkit bench` default
    "cpu-small": dict(lr=0.05, weight_decay=5e-4, batch_size=64, epochs=50, schedule="cosine", model="resnet8"),
}


@dataclass
class BenchConfig:
    """Everything that defines a benchmark run (all of it is written to every results line)."""

    dataset: str = "digits"
    data_dir: Optional[str] = None
    download: bool = False
    n_train: Optional[int] = None          # stratified subset sizes (None: the whole split)
    n_test: Optional[int] = None
    model: str = "resnet8"
    width: int = 1
    methods: List[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    method_params: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    mode: str = "batch"                     # mixing mode for every method: "batch" (papers) or "sample"
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"                # "cosine" or "step"
    milestones: Sequence[float] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: int = 0
    loss: str = "soft_ce"                   # "soft_ce" (soft-target CE) or "bce_softmax" (Manifold/PuzzleMix papers)
    smoothing: float = 0.0
    augment: bool = True                    # random crop (pad) + flip for images, random shift for sequences
    pad: Optional[int] = None               # crop padding; default: 4 at 32 px, scaled with the image size
    median_last: int = 5                    # report the median top-1 of the last k epochs
    eval_corruptions: bool = True
    eval_fgsm: bool = True
    fgsm_eps: float = 8 / 255
    eval_occlusion: bool = True
    max_eval: Optional[int] = 2000          # cap on the robustness subset
    device: str = "auto"
    amp: bool = True                        # bf16 autocast on GPU (ignored on CPU)
    channels_last: bool = True              # on GPU for 2-D models
    threads: Optional[int] = None           # torch threads of every training process (None: 1). Part of the
                                            # protocol: the thread count changes the float reduction order
    jobs: int = 0                           # runs trained in parallel processes (0: one per CPU core up to 4
                                            # on CPU, 1 on GPU); the numbers do not depend on it. On GPU, N > 1
                                            # packs N runs onto the device (spread over the visible GPUs)
    data_placement: str = "auto"            # "device": the whole split on the training device, batches gathered
                                            # there; "host": in host memory, each batch copied; "auto": device on
                                            # CUDA when the split fits. The numbers do not depend on it
    compile: str = "off"                    # torch.compile: "model", "mixer" (the mixer's apply), "all" or "off"
    throughput_steps: int = 6               # timed training steps per method in the throughput pass (0: off)
    preset: Optional[str] = None
    out: str = "runs/bench"
    progress: bool = True
    command: Optional[str] = None           # the command line that started the run (recorded, not used)

    def __post_init__(self) -> None:
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        if self.schedule not in ("cosine", "step"):
            raise ValueError(f"schedule must be 'cosine' or 'step', got {self.schedule!r}")
        if self.loss not in ("soft_ce", "bce_softmax"):
            raise ValueError(f"loss must be 'soft_ce' or 'bce_softmax', got {self.loss!r}")
        if self.mode not in ("batch", "sample"):
            raise ValueError(f"mode must be 'batch' or 'sample', got {self.mode!r}")
        for name, v in (("epochs", self.epochs), ("batch_size", self.batch_size), ("median_last", self.median_last)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(self.jobs, int) or self.jobs < 0:
            raise ValueError(f"jobs must be an int >= 0 (0: automatic), got {self.jobs!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive int (or unset: 1), got {self.threads!r}")
        if self.compile not in COMPILE_CHOICES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, got {self.compile!r}")
        if self.data_placement not in PLACEMENTS:
            raise ValueError(f"data_placement must be one of {', '.join(PLACEMENTS)}, got {self.data_placement!r}")
        if not isinstance(self.throughput_steps, int) or self.throughput_steps < 0:
            raise ValueError(f"throughput_steps must be an int >= 0 (0: no timed pass), got {self.throughput_steps!r}")
        if not self.methods:
            raise ValueError("methods must name at least one method (e.g. vanilla,mixup,cutmix)")
        if not self.seeds:
            raise ValueError("seeds must hold at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds are repeated: {self.seeds} (each seed is one run; give each once)")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods are repeated: {self.methods}")
        unknown = set(self.method_params) - set(self.methods) - {p for m in self.methods for p in m.split("+")}
        if unknown:
            raise ValueError(f"method_params given for methods not in the run: {sorted(unknown)}")

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "BenchConfig":
        """Build a config; a ``preset`` fills fields that ``d`` does not set itself."""
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            hints = [f"{k!r} -> {close[0]!r}" for k in sorted(bad) for close in [difflib.get_close_matches(k, names, 1)]
                     if close]
            raise ValueError(f"unknown config keys {sorted(bad)}" + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                             + f"; valid keys: {', '.join(sorted(names))}")
        d = dict(d)
        preset = d.get("preset")
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
            for k, v in PRESETS[preset].items():
                d.setdefault(k, v)
        for k in ("methods", "seeds"):
            if isinstance(d.get(k), str):
                d[k] = [s.strip() for s in d[k].split(",") if s.strip()]
        if isinstance(d.get("seeds"), int):
            d["seeds"] = list(range(d["seeds"]))
        if "seeds" in d:
            d["seeds"] = [int(s) for s in d["seeds"]]
        if "milestones" in d:
            d["milestones"] = tuple(float(m) for m in d["milestones"])
        return cls(**d)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(d["milestones"])
        return d

    def run_key(self, method: Optional[str] = None) -> str:
        """Hash of the protocol: every setting that changes a run's numbers (the thread count included, as
        resolved), not the output, the progress, the plan's lists, the parallelism or the hyper-parameters
        of the methods. With ``method``, the key of that method's runs: the protocol and the method's own
        ``method_params`` (what a checkpoint must match to be resumed)."""
        key = protocol_key(self.to_dict())
        if method is None:
            return key
        return _hash({"protocol": key, "method": method, "params": self.params_for(method)})

    def resolved_threads(self) -> int:
        """Torch threads of every training process: ``threads``, 1 when unset (whatever ``jobs`` is)."""
        return _threads(self.threads)

    def resolved_jobs(self) -> int:
        """Parallel processes to use: ``jobs``, or for 0 one per CPU core (at most 4) on CPU, 1 on GPU."""
        if self.jobs:
            return self.jobs
        import os

        import torch

        if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()):
            return 1
        return max(1, min(4, os.cpu_count() or 1))

    def params_for(self, method: str) -> Dict[str, Any]:
        """The hyper-parameters the config gives ``method``; for an alternation ``a+b``, each part's, keyed
        ``part.name`` (so they enter its run key)."""
        if "+" in method:
            return {f"{p}.{k}": v for p in method.split("+") for k, v in self.method_params.get(p, {}).items()}
        return dict(self.method_params.get(method, {}))


def _key_fields(d: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of a config dict that enter the run key, ``threads`` resolved (unset: 1)."""
    out = {k: v for k, v in d.items()
           if k not in NOT_IN_RUN_KEY and not (k in KEY_ONLY_WHEN_SET and v == KEY_ONLY_WHEN_SET[k])}
    out["threads"] = _threads(out.get("threads"))
    return out


def _threads(requested: Optional[int]) -> int:
    """The one rule for the thread count of a training process: as requested, 1 when unset."""
    return requested or 1


def protocol_key(config: Mapping[str, Any]) -> str:
    """The run key of a config dict (``to_dict()`` form, as recorded): :meth:`BenchConfig.run_key`."""
    return _hash(_key_fields(config))


def _hash(d: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> List[str]:
    """``["epochs: 3 -> 6", ...]``: the run-key fields in which two config dicts (``to_dict()`` form, as
    recorded in ``results.jsonl``) differ; a field one of them lacks counts as a difference."""
    a, b = _key_fields(old), _key_fields(new)
    missing = object()
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, missing), b.get(k, missing)
        if json.dumps(va, default=str) != json.dumps(vb, default=str):
            out.append(f"{k}: {'(unset)' if va is missing else repr(va)} -> {'(unset)' if vb is missing else repr(vb)}")
    return out


def effective_settings(config: Mapping[str, Any], device_type: str, spatial_dims: Optional[int]) -> Dict[str, Any]:
    """What a config's requests become on a device: bf16 autocast and channels-last memory only on CUDA
    (channels-last for 2-D models only), the resolved thread count and what ``torch.compile`` wraps. The trainer runs with these and
    records them; the report shows them (a CPU run has ``amp`` off whatever the config asked)."""
    cuda = device_type == "cuda"
    return {"amp": bool(config.get("amp")) and cuda,
            "channels_last": bool(config.get("channels_last")) and cuda and spatial_dims == 2,
            "threads": _threads(config.get("threads")), "compile": config.get("compile") or "off"}


def load_config_file(path: str) -> Dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) config into a dict of BenchConfig fields.

    A file that does not parse raises ``ValueError`` naming the file and the parser's position."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {path!r} not found")
    text = p.read_text()
    if p.suffix.lower() == ".toml":
        import tomllib

        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config file {path!r} is not valid TOML: {e}") from e
    elif p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:  # pragma: no cover - yaml is in the bench extra
            raise ImportError("reading a YAML config needs PyYAML: pip install 'mixkit[bench]'") from e
        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"config file {path!r} is not valid YAML: {' '.join(str(e).split())}") from e
    else:
        raise ValueError(f"config file must end in .toml, .yaml or .yml, got {p.name!r}")
    if not isinstance(d, dict):
        raise ValueError(f"config file {path!r} must hold a mapping of settings")
    return d
