"""The round-3 search space (benchmarks/recipe_space_round3.toml) and EMA decay in the built-in space:
a sweep over them runs, and its study reads back with plain Optuna."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import tomllib

from workbench.cli import main
from workbench.core.base.config import TrainConfig
from workbench.core.search.space import default_space, load_space

SPACE_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "recipe_space_round3.toml"
ISSUE_SETTINGS = {
    "learning_rate",
    "layer_lr_decay",
    "epochs",
    "warmup_ratio",
    "dropout",
    "reinit_top_layers",
    "freeze_embeddings",
    "batch_size",
    "ema_decay",
}


def test_the_round3_space_searches_every_setting_the_issue_names() -> None:
    assert ISSUE_SETTINGS <= set(load_space(SPACE_FILE).names)
    assert "ema_decay" in default_space().names


def test_a_sweep_of_the_round3_space_reads_back_with_optuna(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs, storage = tmp_path / "runs", f"sqlite:///{tmp_path / 'round3.db'}"
    # the file less epochs and batch size, held fixed (a sweep refuses a setting both searched and
    # fixed): two quick trials on a tiny model
    searched = {k: v for k, v in tomllib.loads(SPACE_FILE.read_text()).items() if k not in ("epochs", "batch_size")}
    space = tmp_path / "space.json"
    space.write_text(json.dumps(searched))
    assert (
        main(
            [
                "sweep",
                "--study",
                "round3",
                "--trials",
                "2",
                "--space",
                str(space),
                "--storage",
                storage,
                "--runs",
                str(runs),
                "--model",
                str(tiny_model_dir),
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--train-limit",
                "32",
                "--precision",
                "fp32",
                "--eval-batch-size",
                "256",
            ]
        )
        == 0
    )
    study = optuna.load_study(study_name="round3", storage=storage)
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == set(load_space(SPACE_FILE).names) - {"epochs", "batch_size"}
        config = TrainConfig.load(runs / trial.user_attrs["run"] / "config.json")
        assert config.ema_decay == trial.params["ema_decay"]
        assert config.head_lr_multiplier == trial.params["head_lr_multiplier"]
        assert config.epochs == 1 and config.batch_size == 16
