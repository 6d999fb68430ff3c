"""A stand-in for torchvision's ``tv_tensors`` in the main suite (PyPI's torchvision does not load beside
the pinned CPU torch): a Tensor subclass that, like ``tv_tensors.Image``, survives only ``clone``, ``to``
and ``detach``; every other torch op returns a plain Tensor."""
import torch


class ImageLike(torch.Tensor):
    """Like torchvision's tv_tensors.Image / Video: most torch ops return a plain Tensor."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func in (torch.Tensor.clone, torch.Tensor.to, torch.Tensor.detach):
            return out
        return _unwrap(out)


def _unwrap(out):
    if isinstance(out, torch.Tensor) and type(out) is not torch.Tensor:
        return out.as_subclass(torch.Tensor)
    if isinstance(out, (tuple, list)):
        return type(out)(_unwrap(o) for o in out)
    return out
