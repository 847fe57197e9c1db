"""--report-to: Accelerate's trackers, optional extras; TensorBoard's event files read back with its own reader."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers.cli import train_args

from workbench.cli import main
from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError
from workbench.core.base.reporting import missing_trackers, tracker_names
from workbench.core.training.trackers import hyperparameters, tensorboard_dir
from workbench.core.training.train import train


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_report_to_tensorboard_leaves_event_files_with_a_loss_series(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = tmp_path / "runs"
    args = train_args(tiny_model_dir, tiny_cola_dir, runs, "tb", "--report-to", "tensorboard")
    args[args.index("--train-limit") + 1] = "32"
    args[args.index("--epochs") + 1] = "1"
    assert main(args) == 0
    capsys.readouterr()
    run_dir = runs / "tb"
    events = read_events(run_dir)
    steps = [e for e in events if e["kind"] == "step"]
    assert len(steps) == 2  # 32 sentences, batch 16

    folder = tensorboard_dir(run_dir)
    assert folder.is_relative_to(run_dir) and list(folder.glob("events.out.tfevents.*"))
    reader = EventAccumulator(str(folder))
    reader.Reload()
    loss = reader.Scalars("train/loss")
    assert [point.step for point in loss] == [e["step"] for e in steps]  # one point per optimizer step
    assert [point.value for point in loss] == pytest.approx([e["loss"] for e in steps], rel=1e-6)
    assert [p.value for p in reader.Scalars("train/learning_rate")] == pytest.approx([e["lr"] for e in steps])
    assert len(reader.Scalars("train/grad_norm")) == 2
    epoch = next(e for e in events if e["kind"] == "epoch")
    for tag in ("train_loss", "val_loss", "val_accuracy", "val_mcc"):
        (point,) = reader.Scalars(f"epoch/{tag}")
        assert point.step == epoch["step"] and point.value == pytest.approx(epoch[tag], abs=1e-6)
    end = events[-1]
    for tag in ("holdout_mcc", "in_domain_dev_mcc"):
        (point,) = reader.Scalars(f"final/{tag}")
        assert point.value == pytest.approx(end[tag], abs=1e-6)


@pytest.mark.parametrize("value", ["nope", "tensorboard,nope"])
def test_unknown_tracker_is_one_line_and_exit_2(
    value: str, tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(train_args(tiny_model_dir, tiny_cola_dir, runs, "bad", "--report-to", value)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: --report-to:")
    assert "'nope'" in err and "tensorboard, mlflow, wandb" in err
    assert not (runs / "bad").exists()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="needs a Python without mlflow")
def test_missing_tracker_package_names_the_pip_extra(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(train_args(tiny_model_dir, tiny_cola_dir, runs, "ml", "--report-to", "tensorboard,mlflow")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'cola-workbench[mlflow]'" in err
    assert not (runs / "ml").exists()
    # the core says the same before it makes a run folder (the TUI and detached runs go through it)
    config = TrainConfig(model=str(tiny_model_dir), report_to="mlflow")
    with pytest.raises(TrainingError, match=r"report_to: mlflow is not installed: pip install"):
        train(config, runs / "core")
    assert not (runs / "core").exists()


def test_tracker_names_and_hyperparameters() -> None:
    assert tracker_names("") == []
    assert tracker_names(" TensorBoard, wandb,,tensorboard ") == ["tensorboard", "wandb"]
    assert missing_trackers("tensorboard") == ""  # the dev extra installs it
    assert TrainConfig(report_to=" TensorBoard ").validate() == {}
    values = hyperparameters(TrainConfig(report_to="tensorboard", extra={"note": "x", "nested": {"a": 1}}))
    assert values["report_to"] == "tensorboard" and values["extra.note"] == "x"
    assert all(isinstance(v, (bool, int, float, str)) for v in values.values())  # TensorBoard's hparams take these
