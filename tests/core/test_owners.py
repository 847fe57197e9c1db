"""One core function per question the faces ask of runs and models (issue 18, "one owner per question"):
is this a run folder, which run owns a model folder, a model's version, a run's status, a run's path,
where the sweeps are kept, an evaluation's slices."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import matthews_corrcoef

from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import RunError, is_run_folder, model_folder, run_of_model, run_path
from workbench.core.model.loading import load_tokenizer, model_version, resolve_model
from workbench.core.runs.status import ENDED_UNANNOUNCED, list_runs, run_info, run_status


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (one epoch on 32 sentences) in a runs folder of its own."""
    from workbench.core.training.train import train

    runs = tmp_path_factory.mktemp("owners-runs")
    config = TrainConfig(
        model=str(tiny_model_dir),
        epochs=1,
        batch_size=16,
        train_limit=32,
        learning_rate=1e-3,
        precision="fp32",
        eval_batch_size=256,
    )
    assert train(config, runs / "done-run").status == "done"
    return runs / "done-run"


def test_a_run_folder_is_told_from_a_saved_model_and_an_empty_folder(
    trained_run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert is_run_folder(trained_run)
    assert not is_run_folder(trained_run / "model")  # a save_pretrained folder: config.json beside weights
    assert not is_run_folder(tiny_model_dir)
    assert not is_run_folder(tmp_path)  # empty
    assert not is_run_folder(tmp_path / "missing")
    started = tmp_path / "started"  # what train() writes first: its config, nothing else yet
    started.mkdir()
    TrainConfig().save(started / "config.json")
    assert is_run_folder(started)


def test_the_runs_list_leaves_out_a_saved_model_beside_the_runs(trained_run: Path, tiny_model_dir: Path) -> None:
    runs = trained_run.parent
    shutil.copytree(tiny_model_dir, runs / "exported-model")  # config.json too, but a model, not a run
    try:
        assert [info.id for info in list_runs(runs)] == ["done-run"]
    finally:
        shutil.rmtree(runs / "exported-model")


def test_a_run_not_trained_yet_has_no_model_and_is_not_taken_for_one(tmp_path: Path) -> None:
    started = tmp_path / "started"
    started.mkdir()
    TrainConfig().save(started / "config.json")
    with pytest.raises(RunError, match="no trained model yet"):
        model_folder(started)  # not its own folder: its config.json is a TrainConfig, not a model's


def test_the_run_that_owns_a_model_folder(trained_run: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    assert run_of_model(trained_run / "model") == trained_run
    assert run_of_model(model_folder(trained_run)) == trained_run
    assert run_of_model(tiny_model_dir) is None
    stray = tmp_path / "export" / "model"  # a saved model that happens to be called model/, in no run
    shutil.copytree(tiny_model_dir, stray)
    assert run_of_model(stray) is None
    assert resolve_model(str(trained_run)) == str(trained_run / "model")


def test_a_models_version_changes_when_any_of_its_weight_files_is_rewritten(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "sharded"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"second shard")
    before = model_version(folder)
    assert model_version(folder) == before  # nothing changed: the same key, a cached model is reused
    (folder / "tokenizer_config.json").touch()  # not weights
    assert model_version(folder) == before
    later = os.stat(folder / "model.safetensors").st_mtime_ns + 5_000_000_000
    os.utime(folder / "model-00002-of-00002.safetensors", ns=(later, later))  # the second file only
    assert model_version(folder) != before
    rewritten = model_version(folder)
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())  # same size, new time
    os.utime(folder / "model.safetensors", ns=(later + 1, later + 1))
    assert model_version(folder) != rewritten
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert model_version(copy) != model_version(folder)  # another folder: another model
    assert model_version("bert-base-uncased") == "bert-base-uncased"


def write_events(folder: Path, events: list[dict[str, object]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    TrainConfig(epochs=3).save(folder / "config.json")
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def epoch(n: int, mcc: float) -> dict[str, object]:
    return {
        "kind": "epoch",
        "time": "t",
        "epoch": n,
        "step": n * 10,
        "train_loss": 0.5,
        "val_n": 10,
        "val_loss": 0.5,
        "val_accuracy": 0.5,
        "val_mcc": mcc,
        "best": True,
        "elapsed_s": 1.0,
    }


def test_a_run_resumed_after_a_failure_then_killed_is_failed_for_the_kill(tmp_path: Path) -> None:
    start = {"kind": "start", "time": "t"}
    failed = {"kind": "end", "time": "t", "status": "failed", "error": "out of memory at batch size 32"}
    write_events(tmp_path / "run", [start, epoch(1, 0.2), failed, start])
    info = run_info(tmp_path / "run")
    assert (info.status, info.error) == ("failed", ENDED_UNANNOUNCED)  # not the earlier failure's words
    assert info.summary() == f"failed: {ENDED_UNANNOUNCED}"
    assert run_status([start], lambda: True) == ("running", "")
    assert run_status([start, failed, start, {"kind": "end", "time": "t", "status": "stopped"}], lambda: False) == (
        "stopped",
        "",
    )


def test_a_done_runs_summary_gives_its_best_validation_and_holdout_mcc(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_events(
        run,
        [
            {"kind": "start", "time": "t"},
            epoch(1, 0.25),
            epoch(2, 0.5),
            epoch(3, 0.375),
            {"kind": "end", "time": "t", "status": "done"},
        ],
    )
    (run / "eval.json").write_text(json.dumps({"holdout": {"mcc": 0.125}}), encoding="utf-8")
    assert run_info(run).summary() == "done, best validation MCC 0.500, holdout MCC 0.125"
    write_events(
        tmp_path / "halted",
        [{"kind": "start", "time": "t"}, epoch(1, 0.25), {"kind": "end", "time": "t", "status": "stopped"}],
    )
    assert run_info(tmp_path / "halted").summary() == "stopped after epoch 1/3; its checkpoint resumes it"


def test_run_path_finds_an_existing_run_by_its_folder_name_and_refuses_a_bad_new_name(
    trained_run: Path, tiny_model_dir: Path
) -> None:
    runs = trained_run.parent
    assert run_path(runs, "done-run") == runs / "done-run"
    assert run_path(runs, str(trained_run)) == trained_run
    assert run_path(runs, str(tiny_model_dir)) == tiny_model_dir  # eval and predict take a saved model
    odd = runs / "copied run"  # made by hand, with a space: still found by its name
    shutil.copytree(trained_run, odd, ignore=shutil.ignore_patterns("model", "checkpoint", "*.npz"))
    try:
        assert run_path(runs, "copied run") == odd
    finally:
        shutil.rmtree(odd)
    with pytest.raises(RunError):
        run_path(runs, "new run")  # a new name is checked
    with pytest.raises(RunError):
        run_path(runs, "../elsewhere")


def test_the_sweep_database_is_where_the_default_storage_points(tmp_path: Path) -> None:
    from workbench.core.search.storage import default_storage, sweep_database
    from workbench.tui.screens.many_runs import many_runs_text

    assert sweep_database(tmp_path) == tmp_path.resolve() / "sweeps.db"
    assert default_storage(tmp_path) == f"sqlite:///{(tmp_path.resolve() / 'sweeps.db').as_posix()}"
    assert "no seed groups or sweeps" in many_runs_text(tmp_path)


def test_evaluation_slices_by_length_match_a_count_by_hand(tiny_model_dir: Path) -> None:
    from workbench.core.evaluation.slices import LENGTH_BUCKETS, evaluation_slices

    sentences = [
        "Run.",
        "The cat sat.",
        "The dog that the cat chased ran away quickly.",
        "John seems to have been expected to leave before the end of the long meeting yesterday.",
        "Him left.",
        "What did you wonder whether he saw?",
    ]
    labels = np.array([1, 1, 1, 0, 0, 0])
    p_acceptable = np.array([0.9, 0.4, 0.7, 0.6, 0.2, 0.1])
    frame = pd.DataFrame({"sentence": sentences, "label": labels, "p_acceptable": p_acceptable})
    tokenizer = load_tokenizer(str(tiny_model_dir))
    lengths = np.array([len(tokenizer(s)["input_ids"]) for s in sentences])
    slices = evaluation_slices(frame, tokenizer)
    predicted = (p_acceptable > 0.5).astype(int)
    for (low, high), piece in zip(LENGTH_BUCKETS, slices.by_length, strict=True):
        inside = (lengths >= low) & (lengths <= (high if high is not None else 10**9))
        assert piece.n == int(inside.sum())
        assert piece.errors == int((predicted[inside] != labels[inside]).sum())
    assert slices.threshold.mcc_in_use == pytest.approx(matthews_corrcoef(labels, predicted))
