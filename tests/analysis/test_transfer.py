"""mixkit.analysis.transfer: features, linear probe, fine-tune and bench checkpoints, with known answers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mixkit.analysis import transfer
from mixkit.bench.models import build_model


def _net(c=1, k=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, k))


def _easy(n, k=4, seed=0):
    """Images whose class is the quadrant that is lit: any reasonable feature map separates them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    for i, c in enumerate(y.tolist()):
        r, s = divmod(c, 2)
        x[i, 0, 4 * r:4 * r + 4, 4 * s:4 * s + 4] += 1.0
    return x, y


def test_features_are_the_input_of_the_last_linear_in_eval_mode():
    net = _net()
    net.train()
    x = torch.rand(10, 1, 8, 8)
    f = transfer.features(net, x, batch_size=3)
    with torch.no_grad():
        expect = net[3](net[2](net[1](net[0](x))))
    assert f.shape == (10, 8) and torch.allclose(f, expect)
    assert net.training  # restored


def test_linear_probe_separates_what_the_features_separate_and_not_random_labels():
    net = _net()
    train, test = _easy(200, seed=1), _easy(100, seed=2)
    res = transfer.linear_probe(nn.Sequential(nn.Flatten(), nn.Identity(), nn.Linear(64, 4)), train, test)
    assert res["top1"] == 1.0 and res["dim"] == 64  # raw pixels: the lit quadrant is linearly separable
    g = torch.Generator().manual_seed(3)
    rand = (train[0], torch.randint(0, 4, (200,), generator=g)), (test[0], torch.randint(0, 4, (100,), generator=g))
    assert transfer.linear_probe(net, *rand)["top1"] < 0.5  # labels unrelated to the images: near chance (0.25)


def test_fine_tune_learns_a_new_head_and_leaves_the_model_alone():
    torch.manual_seed(0)  # a backbone that keeps where things are (pooling would lose the quadrant)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train, test = _easy(256, seed=4), _easy(128, seed=5)
    res = transfer.fine_tune(net, train, test, epochs=15, lr=0.05, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert res["model"][-1].out_features == 4 and res["top1"] >= 0.9
    assert res["train_loss"][-1] < res["train_loss"][0]
    again = transfer.fine_tune(net, train, test, epochs=15, lr=0.05, generator=torch.Generator().manual_seed(0))
    assert again["train_loss"] == res["train_loss"]  # one generator, one result


def test_load_bench_model_rebuilds_the_trained_network(tmp_path):
    net = build_model("resnet8", 10, in_channels=1, spatial_dims=2)
    ckpt = tmp_path / "mixup-s0.pt"
    rec = {"method": "mixup", "seed": 0, "config": {"model": "resnet8", "width": 1},
           "setup": {"num_classes": 10, "input_shape": [1, 8, 8]}}
    torch.save({"model": net.state_dict(), "records": [rec], "epoch": 3}, ckpt)
    model, info = transfer.load_bench_model(ckpt)
    x = torch.rand(4, 1, 8, 8)
    net.eval()
    assert torch.allclose(model(x), net(x)) and info["method"] == "mixup" and info["epoch"] == 3
    with pytest.raises(FileNotFoundError, match="does not exist"):
        transfer.load_bench_model(tmp_path / "nope.pt")
    torch.save({"model": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a mixkit bench checkpoint"):
        transfer.load_bench_model(tmp_path / "bad.pt")


def test_errors_name_the_argument():
    net = _net()
    x, y = _easy(8)
    with pytest.raises(TypeError, match="train must be a pair"):
        transfer.linear_probe(net, x, (x, y))
    with pytest.raises(ValueError, match="test: y must be"):
        transfer.fine_tune(net, (x, y), (x, y.float()))
    with pytest.raises(ValueError, match="epochs"):
        transfer.fine_tune(net, (x, y), (x, y), epochs=0)
    with pytest.raises(ValueError, match="no nn.Linear head"):
        transfer.features(nn.Conv2d(1, 2, 3), x)
