"""Sweeps on Optuna in the core: a pruned trial stops after its epoch, a stop ends the sweep, the
default space and space files."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import RunError
from workbench.core.runs.metrics import read_metrics
from workbench.core.runs.status import run_info
from workbench.core.search.space import Space, SweepError, default_space, load_space, parse_space
from workbench.core.search.storage import default_storage
from workbench.core.search.study import fixed_settings
from workbench.core.search.sweep import run_sweep


def test_a_pruned_trial_stops_after_its_epoch(tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_cola_dir),
        epochs=3,
        batch_size=16,
        train_limit=32,
        precision="fp32",
        eval_batch_size=256,
    )
    space = parse_space({"learning_rate": {"low": 1e-4, "high": 1e-3}}, "test")
    # ThresholdPruner(lower=2) prunes every reported MCC (always below 2) from epoch 1 on
    outcome = run_sweep(
        config, 1, "pruned", space=space, runs_dir=tmp_path, pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    assert [(t.state, t.epochs_done) for t in outcome.trials] == [("pruned", 1)]
    trial = optuna.load_study(study_name="pruned", storage=default_storage(tmp_path)).trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    run = tmp_path / trial.user_attrs["run"]
    assert [e["epoch"] for e in read_metrics(run) if e["kind"] == "epoch"] == [1]
    assert run_info(run).status == "stopped" and not (run / "checkpoint").exists()


def test_stop_ends_the_sweep_in_the_running_trial(tiny_model_dir: Path, tmp_path: Path) -> None:
    import threading

    config = TrainConfig(model=str(tiny_model_dir), epochs=2, batch_size=16, train_limit=64, precision="fp32")
    stop = threading.Event()
    outcome = run_sweep(
        config,
        3,
        "stopped",
        space=parse_space({"learning_rate": [1e-3]}, "test"),
        runs_dir=tmp_path,
        stop=stop,
        on_event=lambda e: e["kind"] == "step" and stop.set(),
    )
    assert outcome.stopped and [t.state for t in outcome.trials] == ["stopped"]
    study = optuna.load_study(study_name="stopped", storage=default_storage(tmp_path))
    assert len(study.trials) == 1 and study.trials[0].user_attrs["stopped"] is True
    assert study.trials[0].state == optuna.trial.TrialState.FAIL  # never counted as a result
    assert [e["kind"] for e in read_metrics(tmp_path / "stopped-t0")][-1] == "end"
    assert (tmp_path / "stopped-t0" / "checkpoint").is_dir()  # kept: the stopped trial can be resumed


def test_the_default_space_and_fixed_settings() -> None:
    space = default_space()
    assert {"learning_rate", "layer_lr_decay", "epochs", "warmup_ratio", "weight_decay", "batch_size"} <= set(
        space.names
    )
    assert "epochs" not in space.without(["epochs", "train_limit"]).names
    # the built-in space is every DEFAULT_SPACE entry that names a TrainConfig field, by the dataclass's fields
    from dataclasses import fields

    from workbench.core.search import space as sweep

    settings = {f.name for f in fields(TrainConfig)}
    assert set(space.names) == {name for name in sweep.DEFAULT_SPACE if name in settings}
    # a setting TrainConfig does not have (yet) is left out of the default, and refused in a file
    without_dropout = {k: v for k, v in sweep._setting_types().items() if k != "dropout"}
    original = sweep._setting_types
    try:
        sweep._setting_types = lambda: without_dropout  # type: ignore[assignment]
        assert "dropout" not in default_space().names and "learning_rate" in default_space().names
    finally:
        sweep._setting_types = original  # type: ignore[assignment]
    with pytest.raises(SweepError, match="unknown parameter 'no_such_setting'"):
        parse_space({"no_such_setting": [1, 2]}, "f.json")
    extra = parse_space({"extra.dropout": {"low": 0.0, "high": 0.2}}, "f.json")
    assert isinstance(extra, Space) and extra.params[0].kind == "float"
    assert issubclass(SweepError, RunError)  # the CLI prints it in one line, exit 2


def test_load_space_reads_toml(tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    path.write_text(
        "learning_rate = { low = 2e-5, high = 5e-4, log = true }\nbatch_size = [16, 32]\n"
        "epochs = { low = 2, high = 8, step = 2 }\n"
    )
    space = load_space(path)
    assert space.to_dict() == {
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "epochs": {"type": "int", "low": 2, "high": 8, "log": False, "step": 2},
        "learning_rate": {"type": "float", "low": 2e-5, "high": 5e-4, "log": True},
    }


@pytest.mark.parametrize(
    "message",
    [
        "(sqlite3.IntegrityError) UNIQUE constraint failed: alembic_version.version_num",  # SQLite, seen in CI
        '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
    ],
)
def test_losing_the_race_to_create_the_schema_is_retried(
    message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sweeps opening a new database at once: the one whose schema writes lose the race opens the
    tables the other made instead of failing (the race itself is in tests/e2e/test_sweep_postgres.py)."""
    import sqlalchemy.exc

    from workbench.core.search.storage import open_storage

    real = optuna.storages.RDBStorage
    calls: list[str] = []

    def loses_once(url: str, **kwargs: object) -> object:
        calls.append(url)
        if len(calls) == 1:
            real(url, **kwargs)  # the other process made the schema meanwhile
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception(message))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", loses_once)
    storage = open_storage(f"sqlite:///{tmp_path / 'sweeps.db'}")
    assert len(calls) == 2
    assert storage.get_all_studies() == []


def test_machines_joining_one_study_may_checkpoint_at_their_own_pace(tiny_cola_dir: Path) -> None:
    """How often a machine checkpoints (by steps or by minutes) and its eval batch are its own; the recipe
    is the study's."""
    space = parse_space({"learning_rate": {"low": 1e-4, "high": 1e-3}}, "test")
    one = TrainConfig(data=str(tiny_cola_dir))
    other = TrainConfig(data=str(tiny_cola_dir), checkpoint_minutes=30.0, checkpoint_every=100, eval_batch_size=16)
    assert fixed_settings(one, space) == fixed_settings(other, space)
    assert fixed_settings(one, space) != fixed_settings(TrainConfig(data=str(tiny_cola_dir), seed=7), space)
