"""`workbench sweep` and `workbench train --seeds` end to end on a tiny random BERT and the tiny CoLA."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import optuna
import pytest
from helpers.cli import exit_status

from workbench.cli import main
from workbench.core.base.config import TrainConfig, project_data_dir
from workbench.core.runs.status import run_info
from workbench.core.search.groups import group_summary, parse_seeds
from workbench.core.search.space import parse_space
from workbench.core.search.storage import default_storage
from workbench.core.search.study import recorded_study

SMALL_SPACE = {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}, "warmup_ratio": [0.0, 0.1]}


def tiny_flags(model: Path, data: Path, runs: Path) -> list[str]:
    return [
        "--model",
        str(model),
        "--data",
        str(data),
        "--runs",
        str(runs),
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


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_sweep_of_two_trials_is_an_optuna_study_of_runs(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SMALL_SPACE))
    assert (
        main(
            [
                "sweep",
                "--trials",
                "2",
                "--study",
                "tiny",
                "--space",
                str(space),
                *tiny_flags(tiny_model_dir, tiny_cola_dir, runs),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "study tiny" in out and "best: trial" in out

    study = optuna.load_study(study_name="tiny", storage=default_storage(runs))
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        run = runs / trial.user_attrs["run"]
        assert run.name == f"tiny-t{trial.number}" and (run / "model" / "config.json").is_file()
        info = run_info(run)
        assert info.status == "done" and trial.value == pytest.approx(info.best_val_mcc)
        assert set(trial.params) == {"learning_rate", "warmup_ratio"}
        config = TrainConfig.load(run / "config.json")
        assert config.learning_rate == trial.params["learning_rate"] and config.epochs == 1
        assert config.train_limit == 32  # the fixed settings hold in every trial
        assert trial.intermediate_values == {1: pytest.approx(info.best_val_mcc)}
        assert json.loads((run / "trial.json").read_text())["state"] == "complete"
        assert not (run / "checkpoint").exists()  # a sweep keeps model/, not the optimizer state
    assert recorded_study(study)[0] == parse_space(SMALL_SPACE, "x").to_dict()

    assert main(["sweep", "show", "--runs", str(runs), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    best = max(study.trials, key=lambda t: t.value or -2)
    assert shown["study"] == "tiny" and shown["best"]["number"] == best.number
    assert shown["counts"] == {"complete": 2} and len(shown["top"]) == 2

    # the same study name with another space is refused, and adds no trial
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}}))
    assert (
        main(
            [
                "sweep",
                "--trials",
                "1",
                "--study",
                "tiny",
                "--space",
                str(other),
                *tiny_flags(tiny_model_dir, tiny_cola_dir, runs),
            ]
        )
        == 2
    )
    line = one_error_line(capsys)
    assert "another space" in line and "learning_rate" in line
    assert len(optuna.load_study(study_name="tiny", storage=default_storage(runs)).trials) == 2


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        ('{"learning_rat": {"low": 1e-5, "high": 1e-4}}', ".json", "unknown parameter 'learning_rat'"),
        ('{"learning_rate": {"low": 1e-4, "high": 1e-5}}', ".json", "learning_rate: low (0.0001) must be below high"),
        (
            '{"weight_decay": {"low": 0.0, "high": 0.1, "log": true}}',
            ".json",
            "weight_decay: a log range needs low > 0",
        ),
        ('{"learning_rate": {"low": "small", "high": 1e-4}}', ".json", "learning_rate: low must be a number"),
        ('{"epochs": {"type": "float", "low": 1, "high": 4}}', ".json", "epochs: this setting is a whole number"),
        ('{"batch_size": [16, "32"]}', ".json", "batch_size: choice '32' is not a int"),
        ('{"learning_rate": {"low": 1e-4, "high": 2.0}}', ".json", "learning_rate: 2.0 is out of range"),
        ('{"learning_rate": {"low": 1e-5, "hi": 1e-4}}', ".json", "learning_rate: unknown key(s) hi"),
        ('{"learning_rate": ', ".json", "not valid JSON"),
        (
            "[learning_rate]\nlow = 1e-5\nhigh = 1e-4\nlog = 'yes'\n",
            ".toml",
            "learning_rate: log must be true or false",
        ),
        ("learning_rate = {low = 1e-5", ".toml", "not valid TOML"),
    ],
)
def test_a_bad_space_file_is_one_line_exit_2(
    content: str,
    suffix: str,
    expected: str,
    tiny_model_dir: Path,
    tiny_cola_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    space = tmp_path / f"space{suffix}"
    space.write_text(content)
    assert (
        main(["sweep", "--trials", "1", "--space", str(space), *tiny_flags(tiny_model_dir, tiny_cola_dir, tmp_path)])
        == 2
    )
    line = one_error_line(capsys)
    assert str(space) in line and expected in line, line
    assert not any(tmp_path.glob("sweep-t*"))


def test_a_missing_space_file_and_a_fixed_searched_setting_are_refused(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["sweep", "--space", str(tmp_path / "nope.json"), *tiny_flags(tiny_model_dir, tiny_cola_dir, tmp_path)])
        == 2
    )
    assert "cannot read the space file" in one_error_line(capsys)
    space = tmp_path / "space.toml"
    space.write_text("epochs = { low = 1, high = 3 }\n")
    assert main(["sweep", "--space", str(space), *tiny_flags(tiny_model_dir, tiny_cola_dir, tmp_path)]) == 2
    assert "epochs is searched there and held fixed by --epochs" in one_error_line(capsys)


@pytest.mark.parametrize(
    "storage",
    [
        "postgresql://nobody@127.0.0.1:1/x",
        "mysql://nobody:secret@127.0.0.1:1/x",
        "sqlite:////proc/no-such-place/sweeps.db",
        "nosuchdb://x",
        "sqlite:///TMP",
    ],
)
def test_an_unreachable_storage_is_one_line_exit_2_quickly(
    storage: str, tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No database server here: postgresql/mysql fail on their driver or on the refused port;
    sqlite:///TMP is a folder where the database file should be (SQLite cannot open it)."""
    storage = storage.replace("TMP", str(tmp_path))
    started = time.monotonic()
    assert (
        main(["sweep", "--trials", "1", "--storage", storage, *tiny_flags(tiny_model_dir, tiny_cola_dir, tmp_path)])
        == 2
    )
    assert time.monotonic() - started < 30
    line = one_error_line(capsys)
    assert line.startswith("error: storage ") and "secret" not in line
    assert not any(tmp_path.glob("sweep-t*"))


# ---------------------------------------------------------------- seeds


def test_train_with_seeds_makes_a_group_of_ordinary_runs(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(["train", "--seeds", "7,8", "--name", "g", *tiny_flags(tiny_model_dir, project_data_dir(), runs)]) == 0
    out = capsys.readouterr().out
    assert "group g: 2/2 seeds done" in out
    summary = group_summary(runs, "g")
    assert [m.run for m in summary.members] == ["g-s7", "g-s8"]
    assert [TrainConfig.load(runs / m.run / "config.json").seed for m in summary.members] == [7, 8]
    infos = [run_info(runs / m.run) for m in summary.members]
    assert all(i.status == "done" for i in infos)
    val = [i.best_val_mcc for i in infos]
    holdout = [i.holdout_mcc for i in infos]
    dev = [json.loads((runs / m.run / "eval.json").read_text())["in_domain_dev"]["mcc"] for m in summary.members]
    for spread, values in ((summary.validation, val), (summary.holdout, holdout), (summary.in_domain_dev, dev)):
        assert spread is not None and spread.n == 2
        assert spread.median == pytest.approx(statistics.median(values))
        assert (spread.min, spread.max) == (pytest.approx(min(values)), pytest.approx(max(values)))
    assert summary.best is not None and summary.best.best_val_mcc == max(val)  # type: ignore[type-var]
    assert summary.model_dir == runs / summary.best.run / "model"
    assert f"{summary.holdout.median:.3f}" in out  # type: ignore[union-attr]
    assert main(["runs", "--runs", str(runs)]) == 0  # the runs list shows the group with its spread
    listed = capsys.readouterr().out
    assert "g-s7" in listed and "group g: 2/2 seeds done" in listed
    assert f"{summary.validation.median:.3f}" in listed  # type: ignore[union-attr]
    # two tiny runs may score alike: with figures set apart by hand, the median is their mean, min and max theirs
    for member, mcc in zip(summary.members, (0.2, 0.6), strict=True):
        path = runs / member.run / "eval.json"
        report = json.loads(path.read_text())
        report["in_domain_dev"]["mcc"] = mcc
        path.write_text(json.dumps(report))
    dev_spread = group_summary(runs, "g").in_domain_dev
    assert dev_spread is not None and (dev_spread.median, dev_spread.min, dev_spread.max) == pytest.approx(
        (0.4, 0.2, 0.6)
    )


def test_bad_seeds_are_one_line_exit_2(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seeds, expected in (("4,x", "'x' is not a whole number"), ("4,4", "seed 4 is given twice")):
        assert exit_status(["train", "--seeds", seeds, *tiny_flags(tiny_model_dir, tiny_cola_dir, tmp_path)]) == 2
        assert expected in one_error_line(capsys)
    assert parse_seeds(" 42, 43,44 ") == [42, 43, 44]
    (tmp_path / "taken-s1").mkdir()
    assert (
        main(["train", "--seeds", "1,2", "--name", "taken", *tiny_flags(tiny_model_dir, tiny_cola_dir, tmp_path)]) == 2
    )
    assert "a run already has this member's name" in one_error_line(capsys)
