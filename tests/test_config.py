"""Settings are checked where they are made: every bad value of a probe or training config is a
``ConfigError`` naming the config, the field and what was expected (never a coercion, never a
traceback), and the CLI reports it as one line while a bug keeps its traceback."""

import math

import pytest

from gradlens.cli import main
from gradlens.errors import ConfigError, GradlensError
from gradlens.probe_config import ProbeConfig
from gradlens.train.config import TrainConfig

BAD_TRAIN = [("steps", 0), ("steps", "10"), ("steps", 2.5), ("steps", True), ("steps", None),
             ("batch_size", -1), ("eval_every", math.inf), ("seed", -3), ("warmup_steps", 1.5),
             ("learning_rate", 0.0), ("learning_rate", math.nan), ("temperature", "hot"),
             ("clip_norm", -1.0), ("aux_weight", math.inf), ("mgcm", 1), ("device", "tpu"),
             ("device", 0), ("corpus", None)]
BAD_PROBE = [("steps", 0), ("batch_size", "4"), ("sketch_dim", 0), ("sketch_dim", 512.5),
             ("seed", -1), ("train_steps_between", -2), ("learning_rate", -1e-3),
             ("sketch_dtype", "bfloat8"), ("tasks", ["mt"]), ("tasks", []),
             ("languages", ["spa", "spa"]), ("device", "gpu")]


@pytest.mark.parametrize("field,value", BAD_TRAIN)
def test_a_bad_training_setting_is_named(field, value):
    with pytest.raises(ConfigError, match=rf"^training config: {field} must be .*got {value!r}"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field,value", BAD_PROBE)
def test_a_bad_probe_setting_is_named(field, value):
    with pytest.raises(ConfigError, match=rf"^probe config: {field} must be "):
        ProbeConfig(**{field: value})


def test_good_settings_keep_their_values_and_types():
    cfg = TrainConfig(steps=3.0, learning_rate=1, warmup_steps=10)
    assert (cfg.steps, type(cfg.steps)) == (3, int)
    assert (cfg.learning_rate, type(cfg.learning_rate)) == (1.0, float)
    assert cfg.warmup_steps == 3  # the warm-up fits in the run
    assert ProbeConfig(steps=2, sketch_dim=64).sketch_dim == 64


@pytest.mark.parametrize("argv,named", [
    (["experiment", "runs-none", "--seeds", "0"], "--seeds must be at least 1"),
    (["train", "--plan", "plan.json", "--steps", "0"], "training config: steps must be an integer ≥ 1"),
    (["train", "--plan", "plan.json", "--learning-rate", "nan"], "learning_rate must be a finite number"),
])
def test_the_cli_reports_a_bad_setting_as_one_line(argv, named, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradlens: error: ") and named in err


def test_only_bad_input_is_caught_bugs_are_not():
    assert issubclass(ConfigError, GradlensError)
    # an internal ValueError (a bug, e.g. mismatched arrays) is not gradlens' bad-input tree, so
    # the CLI lets it through with its traceback
    from gradlens.significance import corpus_scores

    with pytest.raises(ValueError) as info:
        corpus_scores(["a"], ["a", "b"])
    assert not isinstance(info.value, GradlensError)
