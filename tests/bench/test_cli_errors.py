"""`mixkit bench` and `mixkit report` errors as a user meets them (issue 9): one line
`mixkit: error: ...` naming the input and the fix, exit status 2, the full trace with --traceback;
and the one `--param` parser of `show` and `bench`."""
from __future__ import annotations

import errno
import os

import pytest
import torch

from mixkit import cli
from mixkit.bench import io as bench_io
from mixkit.bench.runner import load_bench_data
from mixkit.bench.models import build_model
from mixkit.bench.trainer import build_mixer, train_run
from mixkit.cli.bench import config_from_args

BASE = ["bench", "--dataset", "digits", "--n-train", "64", "--n-test", "32", "--batch-size", "32", "--epochs", "2",
        "--methods", "vanilla", "--seeds", "1", "--no-corruptions", "--no-fgsm", "--no-occlusion", "--quiet",
        "--threads", "1", "--jobs", "1"]


def _one_line_error(capsys, argv):
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixkit: error: ") and "Traceback" not in err, err
    return lines[0]


def _toml(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


CASES = {
    "unknown method": (lambda t: BASE + ["--methods", "vanilla,mixupp", "--out", str(t / "o")],
                       ["'mixupp'", "Valid names", "mixkit list"]),
    "negative epochs": (lambda t: BASE + ["--epochs", "-1", "--out", str(t / "o")], ["epochs must be a positive int, got -1"]),
    "bad TOML": (lambda t: BASE + ["--config", _toml(t, "broken.toml", "epochs = \n"), "--out", str(t / "o")],
                 ["broken.toml", "not valid TOML"]),
    "unknown key": (lambda t: BASE + ["--config", _toml(t, "keys.toml", "epoch = 3\n"), "--out", str(t / "o")],
                    ["unknown config keys ['epoch']", "did you mean 'epoch' -> 'epochs'"]),
    "unknown dataset": (lambda t: BASE + ["--dataset", "digitz", "--out", str(t / "o")], ["unknown dataset 'digitz'", "valid names"]),
    "unknown preset": (lambda t: BASE + ["--preset", "mixup-cifar10", "--out", str(t / "o")],
                       ["unknown preset 'mixup-cifar10'", "mixup-cifar"]),
    "missing data": (lambda t: BASE + ["--dataset", "cifar10", "--data-dir", str(t), "--out", str(t / "o")],
                     ["not found", "--data-dir", "--download"]),
    "repeated seeds": (lambda t: BASE + ["--seeds", "1,1", "--out", str(t / "o")], ["seeds are repeated"]),
    "bad parameter": (lambda t: BASE + ["--methods", "vanilla,mixup", "--param", "mixup.alpah=0.2", "--out", str(t / "o")],
                      ["mixup", "'alpah'", "--param mixup.alpah=0.2"]),
    "report without results": (lambda t: ["report", str(t)], ["results.jsonl", "not found"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_bench_error_is_one_line_with_exit_2(tmp_path, capsys, case):
    argv, expected = CASES[case]
    line = _one_line_error(capsys, argv(tmp_path))
    for text in expected:
        assert text in line, line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    line = _one_line_error(capsys, BASE + ["--device", "cuda", "--out", str(tmp_path)])
    assert "no CUDA device" in line and "--device cpu" in line


@pytest.mark.parametrize("code, fix", [(errno.EACCES, "not writable: choose another with --out DIR"),
                                       (errno.ENOSPC, "disk is full: free some space, or write elsewhere with --out DIR")])
def test_unwritable_output_is_one_line(tmp_path, capsys, monkeypatch, code, fix):
    def refuse(*args, **kwargs):  # a read-only folder or a full disk, as the OS reports them
        raise OSError(code, os.strerror(code), kwargs.get("dir"))

    monkeypatch.setattr(bench_io.tempfile, "mkstemp", refuse)
    line = _one_line_error(capsys, BASE + ["--out", str(tmp_path / "out")])
    assert f"cannot write {tmp_path / 'out' / 'results.jsonl'}" in line and fix in line, line
    assert not (tmp_path / "out" / "state").exists()  # failed before training


def test_another_config_in_out_is_one_line(tmp_path, capsys):
    assert cli.main(BASE + ["--epochs", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    line = _one_line_error(capsys, BASE + ["--epochs", "3", "--out", str(tmp_path)])
    assert "epochs: 1 -> 3" in line and "--out NEW_DIR" in line and "--overwrite" in line


def test_corrupted_checkpoint_is_one_line(tmp_path, capsys):
    argv = BASE + ["--out", str(tmp_path)]
    cfg = config_from_args(cli.build_parser().parse_args(argv))
    with pytest.raises(KeyboardInterrupt):  # a run stopped in its second epoch: its checkpoint will be resumed
        train_run(cfg, load_bench_data(cfg), "vanilla", 0, tmp_path, stop_after_steps=3)
    ckpt = tmp_path / "state" / "vanilla-s0.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # damaged
    line = _one_line_error(capsys, argv)
    assert f"checkpoint {ckpt} cannot be read" in line and "--no-resume" in line
    assert cli.main(argv + ["--no-resume"]) == 0  # the fix it names works


def test_traceback_flag_shows_the_full_trace(tmp_path):
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        cli.main(BASE + ["--epochs", "-1", "--out", str(tmp_path), "--traceback"])
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        cli.main(["--traceback"] + BASE + ["--epochs", "-1", "--out", str(tmp_path)])


def test_bench_param_takes_several_items_like_show():
    args = cli.build_parser().parse_args(["bench", "--methods", "vanilla,mixup,cutmix", "--param", "mixup.alpha=0.2",
                                          "cutmix.alpha=0.5", "--param", "cutmix.minmax=(0.2,0.8)"])
    assert config_from_args(args).method_params == {"mixup": {"alpha": 0.2}, "cutmix": {"alpha": 0.5, "minmax": (0.2, 0.8)}}
    show = cli.build_parser().parse_args(["show", "mixup", "--param", "alpha=0.2", "p=0.5"])
    assert show.param == ["alpha=0.2", "p=0.5"]


@pytest.mark.parametrize("source", ["flag", "toml", "yaml"])
def test_param_false_turns_puzzlemix_transport_off(tmp_path, source):
    argv = ["bench", "--methods", "puzzlemix"]
    if source == "flag":
        argv += ["--param", "puzzlemix.transport=false"]
    elif source == "toml":
        argv += ["--config", _toml(tmp_path, "c.toml", "[method_params.puzzlemix]\ntransport = false\n")]
    else:
        argv += ["--config", _toml(tmp_path, "c.yaml", "method_params:\n  puzzlemix: {transport: false}\n")]
    cfg = config_from_args(cli.build_parser().parse_args(argv))
    assert cfg.method_params == {"puzzlemix": {"transport": False}}
    mixer = build_mixer(cfg, "puzzlemix", 10, build_model("resnet8", 10, 1, 2, 1), (0.5,), (0.25,))
    assert mixer.transport is False
