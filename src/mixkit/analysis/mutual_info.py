"""The VAE mutual-information analysis of the FMix paper (Harris et al., "FMix: Enhancing Mixed Sample
Data Augmentation", 2020, §3): train a VAE on real data and one on data mixed by each method, and measure
how much of the real-data representation the mixed-data one keeps.

The estimate is the one of the paper's code (``analysis/vae.py``, ``MINetwork``): push ``x`` through the
real-data VAE ``A`` (``z_A ~ q_A(z|x)``, ``x' ~ p_A(x|z_A)``), encode the reconstruction with the
augmented VAE ``B`` and average the KL term of its ELBO,

    I(Z_A; Z_B) ~= E_x E_{x'} KL(q_B(z|x') || N(0, I))

(the "rate", an upper bound on ``I(X'; Z_B)`` by Alemi et al. 2018, which bounds ``I(Z_A; Z_B)`` by data
processing). :func:`gaussian_mi` is a second, assumption-explicit estimate between paired codes. All in nats.
Formulas and the paper's claim: docs/analysis/mutual_info.md.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import sampling

__all__ = ["ConvVAE", "train_vae", "kl_rate", "gaussian_mi", "vae_mutual_information", "mixing_mi_table"]

_METHODS = ("paper", "rate", "gaussian")


class ConvVAE(nn.Module):
    """A small convolutional VAE for ``(C, L)`` sequences or ``(C, H, W)`` images.

    Encoder: conv 3 -> conv 3 stride 2 -> linear -> ``(loc, log_scale)`` of a diagonal Gaussian posterior.
    Decoder: linear -> nearest upsampling to the input size -> two convs -> the mean of a Gaussian
    likelihood with fixed std ``obs_std`` (0.1, as in the paper's code). Prior ``N(0, I)``. The posterior
    log-std starts at -2, so that few-epoch CPU runs do not collapse the posterior onto the prior.
    """

    def __init__(self, input_shape: Sequence[int], latent_dim: int = 8, width: int = 16, hidden: int = 64,
                 obs_std: float = 0.1) -> None:
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"input_shape must be (C, L) or (C, H, W), got {tuple(input_shape)}")
        for v, n in ((latent_dim, "latent_dim"), (width, "width"), (hidden, "hidden")):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{n} must be a positive int, got {v!r}")
        if not obs_std > 0:
            raise ValueError(f"obs_std must be > 0, got {obs_std!r}")
        self.input_shape, self.latent_dim, self.obs_std = shape, latent_dim, float(obs_std)
        conv = nn.Conv1d if len(shape) == 2 else nn.Conv2d
        c, sp = shape[0], shape[1:]
        self._low = tuple((s + 1) // 2 for s in sp)
        flat = 2 * width * math.prod(self._low)
        self.encoder = nn.Sequential(conv(c, width, 3, padding=1), nn.ReLU(),
                                     conv(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(flat, hidden), nn.ReLU())
        self.loc = nn.Linear(hidden, latent_dim)
        self.log_scale = nn.Linear(hidden, latent_dim)
        nn.init.constant_(self.log_scale.bias, -2.0)  # start with narrow posteriors: no collapse in short runs
        self.decoder_in = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, flat), nn.ReLU())
        self.decoder = nn.Sequential(nn.Upsample(size=sp, mode="nearest"), conv(2 * width, width, 3, padding=1),
                                     nn.ReLU(), conv(width, c, 3, padding=1))
        self._width = width

    def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(loc, log_scale)`` of ``q(z|x)``, each ``(B, latent_dim)``."""
        h = self.encoder(x)
        return self.loc(h), self.log_scale(h).clamp(-10.0, 5.0)

    def decode(self, z: Tensor) -> Tensor:
        """The mean of ``p(x|z)``, ``(B, *input_shape)``."""
        h = self.decoder_in(z).view(z.shape[0], 2 * self._width, *self._low)
        return self.decoder(h)

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """``(reconstruction mean, loc, log_scale)`` with one reparameterised draw of ``z``."""
        loc, log_scale = self.encode(x)
        return self.decode(_draw(loc, log_scale, generator)), loc, log_scale


# --------------------------------------------------------------------------------------- helpers
def _draw(loc: Tensor, log_scale: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    eps = torch.randn(loc.shape, generator=generator, device=sampling.gen_device(generator), dtype=loc.dtype)
    return loc + log_scale.exp() * eps.to(loc.device)


def _kl_std_normal(loc: Tensor, log_scale: Tensor) -> Tensor:
    """``KL(N(loc, exp(log_scale)^2) || N(0, 1))`` summed over the latent dims: ``(B,)``."""
    return 0.5 * (loc.pow(2) + (2 * log_scale).exp() - 1 - 2 * log_scale).sum(1)


def _check_vae(vae: Any, name: str) -> nn.Module:
    if not (isinstance(vae, nn.Module) and callable(getattr(vae, "encode", None))
            and callable(getattr(vae, "decode", None))):
        raise TypeError(f"{name} must be a VAE module with encode(x) -> (loc, log_scale) and decode(z) "
                        f"(e.g. from train_vae), got {type(vae).__name__}")
    return vae


def _as_data(data: Any, name: str = "data") -> Tensor:
    x = getattr(data, "x_train", data)  # a mixkit.bench DataSplit: its training images
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (N, C, L) or (N, C, H, W), or a DataSplit, got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else x.dtype}")
    if x.dim() not in (3, 4) or x.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N, C, L) or (N, C, H, W) with N >= 2, got {tuple(x.shape)}")
    return x


def _mix_fn(mixer: Any) -> Optional[Callable[[Tensor, Optional[torch.Generator]], Tensor]]:
    """``mixer`` as ``(x, generator) -> mixed x``: a registry name, a mixkit Mixer or such a callable."""
    if mixer is None:
        return None
    if isinstance(mixer, str):
        from .. import registry
        mixer = registry.create(mixer)
    if hasattr(mixer, "mix") and callable(mixer.mix):
        if getattr(mixer, "needs_labels", False) or getattr(mixer, "needs_model", False) or getattr(mixer, "runs_model", False):
            raise ValueError(f"mixer {type(mixer).__name__} needs labels or a model; the VAE analysis mixes "
                             "unlabelled inputs, so use a method that mixes the input alone")
        return lambda x, g: mixer.mix(x, generator=g).inputs
    if callable(mixer):
        return mixer
    raise TypeError(f"mixer must be None, a method name, a mixkit Mixer or a callable (x, generator) -> x, "
                    f"got {type(mixer).__name__}")


def _generator(generator: Optional[torch.Generator]) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(int(torch.randint(1 << 62, (1,))))
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(1 << 62, (1,), generator=generator, device=sampling.gen_device(generator)))


# --------------------------------------------------------------------------------------- training
def train_vae(data: Any, *, latent_dim: int = 8, epochs: int = 5, batch_size: int = 32, lr: float = 2e-3,
              mixer: Any = None, generator: Optional[torch.Generator] = None,
              device: Union[None, str, torch.device] = None, width: int = 16, obs_std: float = 0.1) -> ConvVAE:
    """Train a :class:`ConvVAE` on ``data`` (each batch mixed by ``mixer`` first, if given) with Adam on
    the negative ELBO ``||x - x_hat||^2 / (2 obs_std^2) + KL(q(z|x) || N(0, I))`` per sample.

    Args:
        data: ``(N, C, L)`` or ``(N, C, H, W)`` float tensor, or a DataSplit (its ``x_train``).
        mixer: ``None`` (real data), a method name, a mixkit Mixer, or ``(x, generator) -> x``.
        generator: every draw (initialisation, shuffling, mixing, reparameterisation) comes from it;
            the same seed gives the same VAE.
        device: where to train (default: the data's device).

    Returns:
        the trained VAE in eval mode, with ``history`` (the mean loss per epoch).
    """
    x = _as_data(data)
    for v, n in ((epochs, "epochs"), (batch_size, "batch_size")):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{n} must be a positive int, got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    mix = _mix_fn(mixer)
    g = _generator(generator)
    dev = torch.device(device) if device is not None else x.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(g))
        vae = ConvVAE(tuple(x.shape[1:]), latent_dim=latent_dim, width=width, obs_std=obs_std)
    vae.to(dev).train()
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    scale = 0.5 / vae.obs_std ** 2
    history = []
    n = x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=g, device=sampling.gen_device(g)).to(x.device)
        total = 0.0
        for i in range(0, n, batch_size):
            xb = x[order[i:i + batch_size]].to(dev)
            if mix is not None and xb.shape[0] > 1:
                xb = mix(xb, g)
            recon, loc, log_scale = vae(xb, g)
            loss = (scale * (recon - xb).pow(2).flatten(1).sum(1) + _kl_std_normal(loc, log_scale)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * xb.shape[0]
        history.append(total / n)
    vae.history = history
    return vae.eval()


# --------------------------------------------------------------------------------------- estimators
@torch.no_grad()
def kl_rate(vae: nn.Module, x: Tensor, *, batch_size: int = 512) -> float:
    """The rate ``E_x KL(q(z|x) || N(0, I))`` in nats: an upper bound on ``I(X; Z)`` (Alemi et al. 2018),
    the ``upper=True`` estimate of the FMix code."""
    vae = _check_vae(vae, "vae")
    x = _as_data(x, "x")
    dev = next(vae.parameters()).device
    kl = [_kl_std_normal(*vae.encode(x[i:i + batch_size].to(dev))) for i in range(0, x.shape[0], batch_size)]
    return float(torch.cat(kl).mean())


def gaussian_mi(za: Tensor, zb: Tensor, *, eps: float = 1e-6) -> float:
    """The Gaussian estimate of ``I(Z_a; Z_b)`` from paired samples, in nats:
    ``1/2 (log det R_aa + log det R_bb - log det R)`` with ``R`` the joint correlation matrix (``eps`` added
    to its diagonal, which caps identical codes at about ``d/2 log(1/(2 eps))``). Exact for jointly Gaussian
    codes (``-1/2 log(1 - rho^2)`` per correlated pair); a lower bound on the MI otherwise.

    Args:
        za, zb: ``(N, d_a)`` and ``(N, d_b)`` samples, row ``n`` of both from the same input.
    """
    for t, n in ((za, "za"), (zb, "zb")):
        if not isinstance(t, Tensor) or not t.is_floating_point() or t.dim() != 2:
            raise ValueError(f"{n} must be a float tensor (N, d), got "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    if za.shape[0] != zb.shape[0] or za.shape[0] < 3:
        raise ValueError(f"za and zb must be paired samples with the same N >= 3, got {za.shape[0]} and {zb.shape[0]}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    z = torch.cat([za, zb.to(za.device)], 1).double()
    z = z - z.mean(0)
    z = z / z.std(0).clamp_min(1e-12)  # a constant code becomes 0: it carries no information
    r = z.T @ z / (z.shape[0] - 1) + eps * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    da = za.shape[1]
    mi = 0.5 * (torch.logdet(r[:da, :da]) + torch.logdet(r[da:, da:]) - torch.logdet(r))
    return max(float(mi), 0.0)


@torch.no_grad()
def vae_mutual_information(vae_a: nn.Module, vae_b: nn.Module, x: Tensor, *, method: str = "paper",
                           samples: int = 1, generator: Optional[torch.Generator] = None,
                           batch_size: int = 512) -> float:
    """The mutual information between the codes of ``vae_a`` (trained on real data) and ``vae_b`` (trained
    on augmented data) on inputs ``x``, in nats.

    ``method``:
        ``"paper"``: the FMix code's estimate, ``E KL(q_B(z|x') || N(0, I))`` with ``x' ~ p_A(x|z_A)``,
        ``z_A ~ q_A(z|x)`` (``samples`` draws per input);
        ``"rate"``: ``E KL(q_B(z|x) || N(0, I))`` on the real inputs (the code's ``upper=True``; ignores A);
        ``"gaussian"``: :func:`gaussian_mi` between ``z_A ~ q_A(z|x)`` and ``z_B ~ q_B(z|x)``.
    """
    vae_a, vae_b = _check_vae(vae_a, "vae_a"), _check_vae(vae_b, "vae_b")
    x = _as_data(x, "x")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int, got {samples!r}")
    if method == "rate":
        return kl_rate(vae_b, x, batch_size=batch_size)
    g = _generator(generator)
    dev_a, dev_b = next(vae_a.parameters()).device, next(vae_b.parameters()).device
    kls, codes_a, codes_b = [], [], []
    for _ in range(samples):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            za = _draw(*vae_a.encode(xb.to(dev_a)), g)
            if method == "paper":
                mean = vae_a.decode(za)
                std = float(getattr(vae_a, "obs_std", 0.0))
                noise = torch.randn(mean.shape, generator=g, device=sampling.gen_device(g), dtype=mean.dtype)
                xr = mean + std * noise.to(mean.device)
                kls.append(_kl_std_normal(*vae_b.encode(xr.to(dev_b))))
            else:
                codes_a.append(za.cpu())
                codes_b.append(_draw(*vae_b.encode(xb.to(dev_b)), g).cpu())
    if method == "paper":
        return float(torch.cat(kls).mean())
    return gaussian_mi(torch.cat(codes_a), torch.cat(codes_b))


def mixing_mi_table(data: Any, mixers: Mapping[str, Any], *, eval_data: Optional[Tensor] = None,
                    method: str = "paper", latent_dim: int = 8, epochs: int = 5, batch_size: int = 32,
                    generator: Optional[torch.Generator] = None, device: Union[None, str, torch.device] = None,
                    samples: int = 1) -> Dict[str, Dict[str, float]]:
    """FMix §3: train a VAE on real ``data`` and one per entry of ``mixers`` (name -> what
    :func:`train_vae` takes as ``mixer``), then estimate each one's MI with the real-data VAE on
    ``eval_data`` (default: DataSplit ``x_test``, else ``data``).

    Every VAE starts from the same initialisation and the same seed (only the mixing differs). The row
    ``"real"`` compares the real-data VAE with itself (the reference value).

    Returns:
        ``{name: {"mi": nats, "rate": E KL(q(z|x) || N(0, I)), "mse": reconstruction mean squared error}}``.
    """
    if not isinstance(mixers, Mapping) or not mixers:
        raise ValueError("mixers must be a non-empty dict {name: mixer}")
    if "real" in mixers:
        raise ValueError("'real' names the real-data VAE row; give the mixers other names")
    x = _as_data(data)
    ev = _as_data(eval_data if eval_data is not None else getattr(data, "x_test", x), "eval_data")
    base = _seed(_generator(generator))

    def fit(mixer: Any) -> ConvVAE:
        return train_vae(x, latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, mixer=mixer,
                         generator=torch.Generator().manual_seed(base), device=device)

    real = fit(None)
    table: Dict[str, Dict[str, float]] = {}
    for name, mixer in {"real": None, **dict(mixers)}.items():
        vae = real if name == "real" else fit(mixer)
        g = torch.Generator().manual_seed(sampling.derive_seed(base, "mi"))
        with torch.no_grad():
            dev = next(vae.parameters()).device
            recon = vae.decode(vae.encode(ev.to(dev))[0])
            mse = float(F.mse_loss(recon, ev.to(dev)))
        table[name] = {"mi": vae_mutual_information(real, vae, ev, method=method, samples=samples, generator=g),
                       "rate": kl_rate(vae, ev), "mse": mse}
    return table
