"""Benchmark configuration: presets, config files (TOML/YAML), command-line overrides, clear errors."""
from __future__ import annotations

import argparse

import pytest

from mixkit.cli.bench import config_from_args, register
from mixkit.cli import CLIError
from mixkit.bench.config import PRESETS, BenchConfig, load_config_file


def _parse(argv):
    ap = argparse.ArgumentParser()
    register(ap.add_subparsers(dest="cmd"))
    return ap.parse_args(argv)


def test_toml_and_yaml_files_give_the_same_config(tmp_path):
    (tmp_path / "c.toml").write_text('dataset = "digits"\nmethods = ["vanilla", "cutmix"]\nseeds = 2\nepochs = 3\n'
                                     '[method_params.cutmix]\nalpha = 0.4\n')
    (tmp_path / "c.yaml").write_text("dataset: digits\nmethods: [vanilla, cutmix]\nseeds: 2\nepochs: 3\n"
                                     "method_params:\n  cutmix: {alpha: 0.4}\n")
    a = BenchConfig.from_dict(load_config_file(str(tmp_path / "c.toml")))
    b = BenchConfig.from_dict(load_config_file(str(tmp_path / "c.yaml")))
    assert a == b and a.seeds == [0, 1] and a.params_for("cutmix") == {"alpha": 0.4}


def test_command_line_overrides_the_file_and_params_are_recorded(tmp_path):
    (tmp_path / "c.toml").write_text('methods = ["vanilla", "mixup"]\nepochs = 3\nlr = 0.1\n')
    args = _parse(["bench", "--config", str(tmp_path / "c.toml"), "--epochs", "7", "--seeds", "0,5",
                   "--param", "mixup.alpha=0.2", "--param", "mixup.reformulate=True"])
    cfg = config_from_args(args)
    assert cfg.epochs == 7 and cfg.lr == 0.1 and cfg.seeds == [0, 5]
    assert cfg.method_params == {"mixup": {"alpha": 0.2, "reformulate": True}}
    assert cfg.to_dict()["method_params"]["mixup"]["alpha"] == 0.2


def test_preset_fills_unset_fields_only():
    cfg = BenchConfig.from_dict({"preset": "mixup-cifar", "epochs": 5})
    assert cfg.epochs == 5 and cfg.lr == PRESETS["mixup-cifar"]["lr"] and cfg.schedule == "step"
    assert cfg.model == "preactresnet18"


def test_run_key_ignores_output_and_method_list_but_not_the_recipe():
    a = BenchConfig(methods=["vanilla"], out="x")
    assert a.run_key() == BenchConfig(methods=["vanilla", "mixup"], out="y", jobs=3).run_key()
    assert a.run_key() != BenchConfig(methods=["vanilla"], lr=0.2).run_key()


@pytest.mark.parametrize("bad, match", [
    ({"unknown_key": 1}, "unknown config keys"),
    ({"preset": "nope"}, "unknown preset"),
    ({"schedule": "linear"}, "schedule"),
    ({"epochs": 0}, "epochs"),
    ({"methods": []}, "methods"),
    ({"methods": ["mixup", "mixup"]}, "repeated"),
    ({"methods": ["vanilla"], "method_params": {"cutmix": {"alpha": 1}}}, "method_params"),
    ({"jobs": -1}, "jobs"),
])
def test_bad_configs_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        BenchConfig.from_dict(bad)


def test_bad_param_flag_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="METHOD.KEY=VALUE"):
        config_from_args(_parse(["bench", "--param", "alpha=0.2"]))
    with pytest.raises(FileNotFoundError):
        load_config_file(str(tmp_path / "none.toml"))
    (tmp_path / "c.ini").write_text("x")
    with pytest.raises(ValueError, match="toml"):
        load_config_file(str(tmp_path / "c.ini"))


def test_param_flag_takes_several_items_and_reads_true_false_none_like_show():
    args = _parse(["bench", "--methods", "vanilla,mixup,cutmix", "--param", "mixup.alpha=0.2", "cutmix.correct_lam=false",
                   "--param", "mixup.reformulate=TRUE", "cutmix.minmax=none"])
    cfg = config_from_args(args)
    assert cfg.method_params == {"mixup": {"alpha": 0.2, "reformulate": True},
                                 "cutmix": {"correct_lam": False, "minmax": None}}
    with pytest.raises(CLIError, match="argument name"):  # the same parser as `mixkit show --param`
        config_from_args(_parse(["bench", "--param", "mixup.1x=2"]))


def test_report_subcommand_is_the_report_modules_parser():
    from mixkit.bench.report import report_command

    args = _parse(["report", "run", "--results", "r.jsonl", "--no-plots"])
    assert args.func is report_command and args.dir == "run" and args.results == "r.jsonl" and args.no_plots
