"""Tests for gensynth/learning/options.py: `gensynth train`'s flags come from the run configuration's dataclasses."""

import dataclasses

import pytest

from gensynth.errors import GensynthError
from gensynth.learning import config as cfg
from gensynth.learning.options import GROUPS, field_docs, option_names, run_config, train_options


def test_every_config_field_is_one_option_with_its_docstring_as_help():
    options = {(o.group, o.field): o for o in train_options()}
    for group, cls in GROUPS:
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            o = options[(group, f.name)]
            assert docs[f.name] and docs[f.name] in o.help, (group, f.name)
    assert len(option_names()) == len(set(option_names()))
    assert {"eval_limit", "eval_roles", "max_time", "grad_clip", "threads", "arch", "targets", "beam"} <= set(option_names())


def test_help_shows_the_real_defaults():
    by_name = {o.name: o for o in train_options()}
    assert "(default: 0.01)" in by_name["weight_decay"].help
    from models import registry

    import re

    for name in registry.names():  # the per-architecture learning rate the help promises is the registry's
        found = re.search(rf"\b{name} ([0-9.e-]+)", by_name["lr"].help)
        assert found and float(found.group(1)) == registry.get(name).default_lr, name
    assert "1, min(10, N), N" in by_name["k"].help  # not "default: 1" alone: --samples changes it
    assert "5% of --max-steps" in by_name["warmup_steps"].help
    assert "(default: None)" not in " ".join(o.help for o in train_options())


def test_run_config_from_options_like_the_command_line():
    c = run_config({"view": "split_x", "samples": 20, "eval_roles": "test_id,train", "max_time": 2.5, "threads": 1})
    assert c.eval.k == (1, 10, 20) and c.eval.roles == ("test_id", "train")
    assert c.training.max_time == 2.5 and c.training.resolved_max_steps is None and c.runtime.threads == 1
    assert c.model.arch == cfg.DEFAULT_ARCH and c.model.size  # resolved
    assert run_config({"view": "split_x", "k": [1, 5], "samples": 5}).eval.k == (1, 5)
    d = run_config({"view": "split_x"})
    assert d.training.resolved_max_steps == cfg.DEFAULT_STEPS and d.training.schedule == "cosine"
    with pytest.raises(GensynthError, match="Unknown training option"):
        run_config({"view": "split_x", "max_stpes": 3})
    with pytest.raises(GensynthError, match="Missing --view"):
        run_config({})
    with pytest.raises(GensynthError, match="--k takes comma-separated whole numbers"):
        run_config({"view": "split_x", "k": "1,x"})


def test_a_value_of_the_wrong_type_is_refused_with_what_the_option_takes():
    """A sweep file's TOML can hold any type: lr = "abc" was a TypeError deep in the config."""
    with pytest.raises(GensynthError, match=r"--lr \(lr in a sweep file\) takes a number, got 'abc'; e.g. lr = "):
        run_config({"view": "split_x", "lr": "abc"})
    with pytest.raises(GensynthError, match=r"--max-steps \(max_steps in a sweep file\) takes a whole number, got 1.5"):
        run_config({"view": "split_x", "max_steps": 1.5})
    with pytest.raises(GensynthError, match=r"--max-steps .* takes a whole number, got True"):
        run_config({"view": "split_x", "max_steps": True})
    assert run_config({"view": "split_x", "lr": 1}).training.lr == 1.0  # a whole number is a number


def test_the_help_lists_the_flags_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from gensynth.cli.main import app; "
            "r = CliRunner().invoke(app, ['train', '--help']); "
            "assert r.exit_code == 0 and '--max-time' in r.output and '--grad-clip' in r.output, r.output; "
            "assert not {'torch', 'lightning'} & set(sys.modules), 'heavy import'")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
