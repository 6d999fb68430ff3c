"""Robustness of a trained classifier to minimal adversarial and to random perturbations (FMix §3).

* :func:`deepfool`: the DeepFool attack (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016), L2 or L-inf,
  batched; per sample the perturbation that flips the label, its norm and the iterations it took.
* :func:`deepfool_summary`: the paper's robustness ``rho = mean ||r(x)|| / ||x||``, medians, and the
  accuracy under DeepFool at given budgets.
* :func:`uniform_noise_curve`: accuracy under additive uniform noise ``U(-eps, eps)`` per pixel.

Inputs are in pixel space; the model's normalisation runs inside, as in :mod:`mixkit.bench.eval`, so
every norm and budget is in pixel units. Formulas and the papers' claims: docs/analysis/robustness.md.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from mixkit.bench.eval.checks import check_y, default_generator
from mixkit.bench.eval.model import ModelView, Normalize, eval_mode

__all__ = ["deepfool", "deepfool_summary", "uniform_noise_curve", "NORMS", "DEFAULT_NOISE_EPS"]

#: The perturbation norms :func:`deepfool` minimises.
NORMS = ("l2", "linf")
#: Noise amplitudes (pixel units) of :func:`uniform_noise_curve` by default.
DEFAULT_NOISE_EPS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
#: Added to every DeepFool step length, as the reference implementation does, so a step crosses the boundary.
STEP_MARGIN = 1e-4


# ---------------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------------
def _view(model, normalize, mean, std, batch_size, device) -> ModelView:
    return ModelView.of(model, normalize, mean=mean, std=std, batch_size=batch_size, device=device)


def _check_x(x: Any, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (or an iterable of (x, y) batches), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in pixel space [0, 1], got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, *spatial) or (N, D) with N >= 1, got {tuple(x.shape)}")
    return x


def _check_unit_range(x: Tensor, name: str = "x") -> None:
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must hold pixel values in [0, 1] when clip=True, got min {lo:.4g} max {hi:.4g}")


def _batches(x: Any, y: Tensor | None, need_y: bool) -> Iterator[tuple[Tensor, Tensor | None]]:
    """``(x, y)`` itself, or each ``(xb, yb)`` / ``(xb,)`` / ``xb`` of an iterable of batches (a DataLoader)."""
    if isinstance(x, Tensor):
        _check_x(x)
        if y is None and need_y:
            raise ValueError("y (class ids of shape (N,)) is required when x is a tensor")
        yield x, (None if y is None else check_y(y, x.shape[0]))
        return
    if hasattr(x, "shape") and hasattr(x, "dtype"):  # an array of another library, not a loader
        raise TypeError(f"x must be a torch.Tensor (or an iterable of (x, y) batches), got {type(x).__name__}")
    if y is not None:
        raise ValueError("pass y only with a tensor x; a loader's batches carry their own labels")
    if not isinstance(x, Iterable):
        raise TypeError(f"x must be a torch.Tensor or an iterable of (x, y) batches, got {type(x).__name__}")
    seen = False
    for i, batch in enumerate(x):
        if isinstance(batch, Tensor):
            xb, yb = batch, None
        elif isinstance(batch, (tuple, list)) and len(batch) >= 1:
            xb, yb = batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            raise TypeError(f"batch {i} of x must be a tensor or an (x, y) tuple, got {type(batch).__name__}")
        _check_x(xb, f"batch {i} of x")
        if yb is None and need_y:
            raise ValueError(f"batch {i} of x has no labels; the loader must yield (x, y) batches")
        seen = True
        yield xb, (None if yb is None else check_y(yb, xb.shape[0], f"batch {i} labels"))
    if not seen:
        raise ValueError("x is an empty iterable: no batch to evaluate")


def _logits(view: ModelView, xb: Tensor) -> Tensor:
    """``(B, K)`` logits; a single-logit binary model ``f`` is read as the two logits ``(0, f)``."""
    out = view.forward(xb)
    if out.shape[1] == 1:
        out = torch.cat([torch.zeros_like(out), out], dim=1)
    return out


def _check_labels(label: Tensor, k: int) -> None:
    if bool(((label < 0) | (label >= k)).any()):
        raise ValueError(f"y must lie in [0, {k}) for a model with {k} classes, "
                         f"got min {int(label.min())} max {int(label.max())}")


def _flat_norm(t: Tensor, norm: str) -> Tensor:
    flat = t.reshape(t.shape[0], -1).double()
    return flat.norm(p=2, dim=1) if norm == "l2" else flat.abs().amax(dim=1)


# ---------------------------------------------------------------------------------------------------
# DeepFool
# ---------------------------------------------------------------------------------------------------
def _deepfool_chunk(view: ModelView, x0: Tensor, label: Tensor | None, norm: str, max_iter: int,
                    overshoot: float, num_classes: int | None, clip: bool) -> dict[str, Tensor]:
    """DeepFool on one batch already on the view's device and dtype (the model is in eval mode)."""
    b = x0.shape[0]
    with torch.no_grad():
        logits0 = _logits(view, x0)
    k_all = logits0.shape[1]
    pred0 = logits0.argmax(dim=1)
    if label is None:
        label = pred0
    else:
        label = label.to(pred0.device)
        _check_labels(label, k_all)
    k = k_all if num_classes is None else min(num_classes, k_all)
    # candidate classes: the reference label first, then the k - 1 other classes of highest clean logit
    others = logits0.detach().clone().scatter_(1, label[:, None], -math.inf).topk(k - 1, dim=1).indices
    cand = torch.cat([label[:, None], others], dim=1)
    attacked = pred0 == label
    active = attacked.clone()
    r_tot = torch.zeros_like(x0)
    x_adv = x0.clone()
    iters = torch.zeros(b, dtype=torch.long, device=x0.device)
    pred = pred0.clone()
    for step in range(max_iter + 1):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        last = step == max_iter
        xa = x_adv[idx].detach().requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            la = _logits(view, xa)
            pred[idx] = la.detach().argmax(dim=1)
            still = pred[idx] == label[idx]
            active[idx[~still]] = False
            if last or not bool(still.any()):
                break
            f = la.gather(1, cand[idx])
            fdiff = f[:, 1:] - f[:, :1]  # f_k - f_label, (A, k - 1)
            grads = [torch.autograd.grad(fdiff[:, j].sum(), xa, retain_graph=j < k - 2)[0]
                     for j in range(k - 1)]
        w = torch.stack([g.reshape(g.shape[0], -1) for g in grads], dim=1)  # (A, k - 1, D)
        dual = w.norm(p=2, dim=2) if norm == "l2" else w.abs().sum(dim=2)
        pert = fdiff.detach().abs() / dual
        pert = torch.where(dual > 0, pert, torch.full_like(pert, math.inf))
        best = pert.argmin(dim=1)
        rows = torch.arange(idx.numel(), device=idx.device)
        p, wl = pert[rows, best], w[rows, best]
        movable = still & torch.isfinite(p)
        active[idx[still & ~movable]] = False  # zero gradient: DeepFool cannot move this sample
        if norm == "l2":
            r = (p + STEP_MARGIN)[:, None] * wl / wl.norm(p=2, dim=1, keepdim=True).clamp_min(1e-30)
        else:
            r = (p + STEP_MARGIN)[:, None] * wl.sign()
        sel = idx[movable]
        r_tot[sel] += r[movable].reshape((-1,) + tuple(x0.shape[1:])).to(x0.dtype)
        x_new = x0[sel] + (1.0 + overshoot) * r_tot[sel]
        x_adv[sel] = x_new.clamp(0.0, 1.0) if clip else x_new
        iters[sel] += 1
    return {"x_adv": x_adv.detach(), "iterations": iters, "label": label, "pred": pred, "attacked": attacked}


def deepfool(
    model: nn.Module | ModelView,
    x: Tensor | Iterable,
    y: Tensor | None = None,
    *,
    norm: str = "l2",
    max_iter: int = 50,
    overshoot: float = 0.02,
    num_classes: int | None = None,
    clip: bool = True,
    keep_inputs: bool = True,
    normalize: Normalize | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """DeepFool minimal perturbations (Moosavi-Dezfooli et al., CVPR 2016), batched; docs/analysis/robustness.md.

    At each step the boundaries to the candidate classes ``k`` are linearised around ``x_i``
    (``f'_k = f_k - f_y``, ``w'_k = grad f_k - grad f_y``), the closest one ``l = argmin |f'_k| / ||w'_k||_q``
    is taken and ``r_i = (|f'_l| / ||w'_l||_q + 1e-4) * d`` with ``d = w'_l / ||w'_l||_2`` (L2, q = 2) or
    ``d = sign(w'_l)`` (L-inf, q = 1, the paper's §3.3); ``x_{i+1} = x + (1 + overshoot) * sum r_i``.
    A sample stops as soon as its prediction leaves the reference label.

    Args:
        model, normalize, mean, std, batch_size, device: the model as
            :meth:`~mixkit.bench.eval.model.ModelView.of` takes it; it must treat the samples of a batch
            independently (it runs in eval mode; training flags are restored afterwards).
        x: ``(N, C, *spatial)`` (or ``(N, D)``) float in pixel space, or an iterable of ``(x, y)`` batches.
        y: reference labels ``(N,)``; ``None`` (the paper): the model's clean predictions. A sample the
            model already misclassifies is not attacked (norm 0, 0 iterations, ``attacked`` False).
        norm: ``"l2"`` or ``"linf"``.  max_iter: steps at most (50).  overshoot: 0.02 as in the paper.
        num_classes: candidate classes (the reference label and the top others by clean logit);
            ``None``: all (the reference implementation uses 10).
        clip: keep every iterate in ``[0, 1]`` (as foolbox does, which the FMix paper used); ``False``: the
            paper's unconstrained DeepFool.
        keep_inputs: return the perturbed inputs (``False`` saves their memory).

    Returns:
        ``{"norm", "input_norm"}`` ``(N,)`` float64 CPU (``||x_adv - x||`` and ``||x||`` in ``norm``),
        ``"x_adv"`` (on ``x``'s device and dtype, or ``None``), ``"iterations"`` int64, ``"flipped"`` bool
        (final prediction != reference label), ``"label"``, ``"pred"`` int64, ``"attacked"`` bool, all
        ``(N,)`` CPU, and ``"p"`` (the norm's name).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    overshoot = float(overshoot)
    if not math.isfinite(overshoot) or overshoot < 0:
        raise ValueError(f"overshoot must be a finite number >= 0, got {overshoot}")
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                                    or num_classes < 2):
        raise ValueError(f"num_classes must be None or an int >= 2, got {num_classes!r}")
    view = _view(model, normalize, mean, std, batch_size, device)
    parts: dict[str, list[Tensor]] = {k: [] for k in ("norm", "input_norm", "x_adv", "iterations", "flipped",
                                                      "label", "pred", "attacked")}
    with eval_mode(view.model):
        for xs, ys in _batches(x, y, need_y=False):
            if clip:
                _check_unit_range(xs)
            for sl in view.spans(xs.shape[0]):
                x0 = xs[sl].detach().to(device=view.device, dtype=view.dtype)
                yb = None if ys is None else ys[sl].to(view.device)
                out = _deepfool_chunk(view, x0, yb, norm, max_iter, overshoot, num_classes, clip)
                parts["norm"].append(_flat_norm(out["x_adv"] - x0, norm).cpu())
                parts["input_norm"].append(_flat_norm(x0, norm).cpu())
                if keep_inputs:
                    parts["x_adv"].append(out["x_adv"].to(device=xs.device, dtype=xs.dtype))
                parts["flipped"].append((out["pred"] != out["label"]).cpu())
                for key in ("iterations", "label", "pred", "attacked"):
                    parts[key].append(out[key].cpu())
    res: dict[str, Any] = {k: (torch.cat(v) if v else None) for k, v in parts.items()}
    res["p"] = norm
    return res


def _median(t: Tensor) -> float | None:
    return float(torch.quantile(t, 0.5)) if t.numel() else None


def _mean(t: Tensor) -> float | None:
    return float(t.mean()) if t.numel() else None


def deepfool_summary(
    model_or_result: nn.Module | ModelView | Mapping[str, Any],
    x: Tensor | Iterable | None = None,
    y: Tensor | None = None,
    *,
    eps: Sequence[float] | None = None,
    **deepfool_kw: Any,
) -> dict[str, Any]:
    """The DeepFool robustness of a model: ``rho = mean_x ||r(x)|| / ||x||`` (the paper's eq. 15) and more.

    Pass a model with ``x`` (and ``y``, keywords of :func:`deepfool`), or the dict :func:`deepfool`
    returned. Over the attacked samples that flipped (and have ``||x|| > 0``): ``rho_mean``,
    ``rho_median``, ``norm_mean``, ``norm_median`` (pixel units), ``iterations_mean``; ``n``,
    ``n_attacked``, ``n_flipped``, ``flip_rate`` (``None`` where no sample counts). With ``eps``:
    ``robust_accuracy``, one per budget: the share of all samples that are attacked (correct, when
    ``y`` is given) and not flipped within that norm (foolbox's DeepFool success at ``epsilons``, the
    FMix paper's curve). docs/analysis/robustness.md.
    """
    if isinstance(model_or_result, Mapping):
        if x is not None or y is not None or deepfool_kw:
            raise ValueError("pass either a deepfool() result alone, or a model with x (and y, keywords)")
        missing = {"norm", "input_norm", "flipped", "attacked", "iterations", "p"} - set(model_or_result)
        if missing:
            raise ValueError(f"model_or_result is not a deepfool() result: it lacks {sorted(missing)}")
        res = model_or_result
    else:
        if x is None:
            raise ValueError("x is required when model_or_result is a model")
        res = deepfool(model_or_result, x, y, keep_inputs=False, **deepfool_kw)
    nrm, xn = res["norm"].double(), res["input_norm"].double()
    flipped, attacked = res["flipped"].bool(), res["attacked"].bool()
    ok = attacked & flipped
    n, n_att, n_flip = int(nrm.numel()), int(attacked.sum()), int(ok.sum())
    rho_sel = ok & (xn > 0)
    rho = nrm[rho_sel] / xn[rho_sel]
    out: dict[str, Any] = {
        "p": res["p"], "n": n, "n_attacked": n_att, "n_flipped": n_flip,
        "flip_rate": (n_flip / n_att) if n_att else None,
        "rho_mean": _mean(rho), "rho_median": _median(rho),
        "norm_mean": _mean(nrm[ok]), "norm_median": _median(nrm[ok]),
        "iterations_mean": _mean(res["iterations"][ok].double()),
    }
    if eps is not None:
        budgets = [float(e) for e in ([eps] if isinstance(eps, (int, float)) else eps)]
        if not budgets or any(not math.isfinite(e) or e < 0 for e in budgets):
            raise ValueError(f"eps must be a non-empty sequence of finite budgets >= 0, got {eps!r}")
        out["eps"] = budgets
        out["robust_accuracy"] = [float((attacked & ~(ok & (nrm <= e))).double().mean()) for e in budgets]
    return out


# ---------------------------------------------------------------------------------------------------
# uniform noise
# ---------------------------------------------------------------------------------------------------
def uniform_noise_curve(
    model: nn.Module | ModelView,
    x: Tensor | Iterable,
    y: Tensor | None = None,
    eps: Sequence[float] | float = DEFAULT_NOISE_EPS,
    *,
    repeats: int = 1,
    generator: torch.Generator | None = None,
    clip: bool = True,
    normalize: Normalize | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Accuracy under additive uniform noise: ``x' = clip(x + eps * u, 0, 1)``, ``u ~ U(-1, 1)`` per pixel.

    One ``u`` is drawn per sample and repeat and shared by every ``eps`` (common random numbers, so the
    curve compares amplitudes on the same noise). The FMix paper's uniform-noise robustness;
    docs/analysis/robustness.md.

    Args:
        model, normalize, mean, std, batch_size, device: the model as
            :meth:`~mixkit.bench.eval.model.ModelView.of` takes it (run in eval mode, flags restored).
        x: ``(N, C, *spatial)`` (or ``(N, D)``) float in ``[0, 1]``, or an iterable of ``(x, y)`` batches.
        y: ``(N,)`` class ids (with a tensor ``x``).  eps: amplitudes ``>= 0`` in pixel units.
        repeats: noise draws per sample (>= 1), averaged.  clip: clip ``x'`` to ``[0, 1]``.
        generator: source of the noise (default: a generator seeded with 0); the result is deterministic
            for a given seed and ``batch_size``.

    Returns:
        ``{"eps": [...], "accuracy": [...], "accuracy_std": [...], "per_repeat": [[...] per repeat],
        "n": N, "repeats": repeats, "clip": clip}``; ``accuracy_std`` is the std over repeats (0 for one).
    """
    amps = [float(e) for e in ([eps] if isinstance(eps, (int, float)) else eps)]
    if not amps or any(not math.isfinite(e) or e < 0 for e in amps):
        raise ValueError(f"eps must be a non-empty sequence of finite amplitudes >= 0, got {eps!r}")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    view = _view(model, normalize, mean, std, batch_size, device)
    g = default_generator(generator)
    correct = [[0] * len(amps) for _ in range(repeats)]
    n = 0
    with eval_mode(view.model), torch.no_grad():
        for xs, ys in _batches(x, y, need_y=True):
            if clip:
                _check_unit_range(xs)
            for sl in view.spans(xs.shape[0]):
                xb = xs[sl].to(device=view.device, dtype=view.dtype)
                yb = ys[sl].to(view.device)
                n += xb.shape[0]
                for r in range(repeats):
                    u = torch.rand(xb.shape, generator=g, device=g.device, dtype=torch.float32)
                    u = (2 * u - 1).to(device=view.device, dtype=view.dtype)
                    for i, e in enumerate(amps):
                        xn = xb + e * u if e > 0 else xb
                        if clip:
                            xn = xn.clamp(0.0, 1.0)
                        logits = _logits(view, xn)
                        if r == 0 and i == 0:
                            _check_labels(yb, logits.shape[1])
                        correct[r][i] += int((logits.argmax(dim=1) == yb).sum())
    per_repeat = [[c / n for c in row] for row in correct]
    acc = torch.tensor(per_repeat, dtype=torch.float64)
    std_ = acc.std(dim=0, unbiased=True) if repeats > 1 else torch.zeros(len(amps), dtype=torch.float64)
    return {"eps": amps, "accuracy": acc.mean(dim=0).tolist(), "accuracy_std": std_.tolist(),
            "per_repeat": per_repeat, "n": n, "repeats": repeats, "clip": clip}
