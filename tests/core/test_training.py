"""Training on a tiny random BERT and the tiny CoLA: optimizer groups, schedule, batching, the run
folder, checkpoints, stop and resume."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.runs import TrainedRun, copy_run

from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError
from workbench.core.data.cola import load_cola
from workbench.core.evaluation.evaluate import compute_metrics
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import read_metrics
from workbench.core.training.checkpoint import load_checkpoint
from workbench.core.training.optim import LengthGroupedSampler, parameter_groups, warmup_steps
from workbench.core.training.prepare import encode
from workbench.core.training.train import train


def test_weight_decay_skips_biases_and_layernorm(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir))
    groups = parameter_groups(model, 1e-4, 0.01)
    decayed = {n for g in groups if g["weight_decay"] > 0 for n in g["names"]}
    undecayed = {n for g in groups if g["weight_decay"] == 0 for n in g["names"]}
    assert decayed and undecayed and not decayed & undecayed
    assert all(not n.endswith("bias") and "LayerNorm" not in n for n in decayed)
    assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in undecayed
    assert "classifier.bias" in undecayed and "classifier.weight" in decayed
    named = {n for n, _ in model.named_parameters()}
    assert decayed | undecayed == named


def test_layer_wise_decay_scales_rates_by_depth(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir))
    groups = parameter_groups(model, 1e-3, 0.01, layer_lr_decay=0.5)
    rate = {n: g["lr"] for g in groups for n in g["names"]}
    assert rate["classifier.weight"] == pytest.approx(1e-3)
    assert rate["bert.encoder.layer.1.output.dense.weight"] == pytest.approx(5e-4)
    assert rate["bert.encoder.layer.0.output.dense.weight"] == pytest.approx(2.5e-4)
    assert rate["bert.embeddings.word_embeddings.weight"] == pytest.approx(1.25e-4)


def test_linear_schedule_warms_up_then_decays_to_zero() -> None:
    from transformers import get_linear_schedule_with_warmup

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    total = 100
    schedule = get_linear_schedule_with_warmup(optimizer, warmup_steps(total, 0.1), total)
    rates = []
    for _ in range(total):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert warmup_steps(total, 0.1) == 10
    assert rates[0] == 0.0 and rates[5] == pytest.approx(0.5) and rates[10] == pytest.approx(1.0)
    assert rates[55] == pytest.approx(0.5) and schedule.get_last_lr()[0] == 0.0


def test_length_grouped_batches_are_seeded_and_cover_everything() -> None:
    lengths = [(i * 37) % 50 + 3 for i in range(400)]
    sampler = LengthGroupedSampler(lengths, batch_size=16, seed=1)
    first = list(sampler)
    assert sorted(first) == list(range(400))
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != first
    batches = [first[i : i + 16] for i in range(0, 400, 16)]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # a random order would give ~45


def test_dynamic_padding_gives_the_same_logits_as_padding_to_128(tiny_model_dir: Path) -> None:
    from transformers import DataCollatorWithPadding

    model = load_model(str(tiny_model_dir)).eval()
    tokenizer = load_tokenizer(str(tiny_model_dir))
    sentences = ["The cat sat.", "Which book did you say that John read yesterday?", "Run!"]
    rows = encode(tokenizer, sentences, [1, 0, 1], 128)
    dynamic = DataCollatorWithPadding(tokenizer)(rows)
    assert dynamic["input_ids"].shape[1] == max(len(r["input_ids"]) for r in rows)
    full = tokenizer(sentences, padding="max_length", max_length=128, return_tensors="pt")
    with torch.no_grad():
        a = model(**{k: v for k, v in dynamic.items() if k != "labels"}).logits
        b = model(**full).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_metrics_match_their_definitions() -> None:
    labels = [1, 1, 0, 0, 1, 0]
    predicted = [1, 0, 0, 1, 1, 0]
    metrics = compute_metrics(labels, predicted)
    tp, tn, fp, fn = 2, 2, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics["mcc"] == pytest.approx(expected)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["confusion"] == [[2, 1], [1, 2]]
    assert compute_metrics([1, 0, 1], [1, 1, 1])["mcc"] == 0.0


def _epochs(run_dir: Path) -> list[dict[str, Any]]:
    return [e for e in read_metrics(run_dir) if e["kind"] == "epoch"]


def test_training_writes_a_whole_run_folder(tiny_config: TrainConfig, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    result = train(tiny_config, tmp_path / "run", on_event=events.append)
    run = tmp_path / "run"
    assert result.status == "done" and result.epochs_done == 2
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [e for e in events if e["kind"] == "step"]
    assert len(steps) == 2 * math.ceil(96 / 16)
    assert all(math.isfinite(e["loss"]) and e["lr"] >= 0 for e in steps)
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    assert [e["epoch"] for e in _epochs(run)] == [1, 2]
    assert read_metrics(run) == events  # metrics.jsonl holds exactly what the callback saw
    assert TrainConfig.load(run / "config.json") == tiny_config
    assert (run / "model" / "model.safetensors").is_file() and (run / "model" / "tokenizer.json").is_file()
    meta, state = load_checkpoint(run)
    assert meta["epoch"] == 2 and meta["finished"] and "optimizer" in state
    report = json.loads((run / "eval.json").read_text())
    cola = load_cola(tiny_config.data or None, tiny_config.validation_fraction, tiny_config.split_seed)
    holdout_n = len(cola["holdout"])
    assert set(report) == {"in_domain_dev", "holdout", "calibration"} and report["holdout"]["n"] == holdout_n
    assert 0 < report["calibration"]["threshold"] < 1
    header = (run / "predictions.tsv").read_text().splitlines()[0]
    assert header == "sentence\tlabel\tpredicted\tp_acceptable\tsource\tp_acceptable_raw"


COLA_LABELS = {0: "unacceptable", 1: "acceptable"}  # CoLA's own meaning of its 0 and 1


@pytest.mark.parametrize("label", [0, 1])
def test_saved_model_loads_in_a_transformers_pipeline_with_the_right_label_names(
    label: int, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    """Trained on sentences all labelled LABEL, the model says LABEL's name for any sentence: swapped
    names in the saved config, or labels swapped in training, would fail here."""
    from transformers import pipeline

    from workbench.core.base.config import project_data_dir

    rows = [
        line
        for line in (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()
        if line.split("\t")[1] == str(label)
    ][:80]
    data = tmp_path / f"all-{label}.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    tiny_config.data, tiny_config.learning_rate = str(data), 5e-3
    train(tiny_config, tmp_path / "run")
    classify = pipeline("text-classification", model=str(tmp_path / "run" / "model"))
    for out in classify(["The cat sat on the mat.", "Cat the on sat mat the.", "Who did you see?"]):
        assert out["label"] == COLA_LABELS[label] and out["score"] > 0.55, out  # measured 0.63 and 0.66


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_stop_then_resume_equals_an_uninterrupted_run(precision: str, tiny_config: TrainConfig, tmp_path: Path) -> None:
    """In bf16 too (the default where the CPU has native bf16), to the same 1e-5: autocast computes
    in bf16, but the fp32 weights, the optimizer state and the RNG come back exactly and the CPU
    kernels are deterministic (measured difference 0.0), so any drift is a resume bug."""
    tiny_config.precision = precision
    reference = train(tiny_config, tmp_path / "whole")
    assert read_metrics(tmp_path / "whole")[0]["precision"] == ("bf16" if precision == "bf16" else "no")
    stop = threading.Event()

    def stop_at_step_4(event: dict[str, Any]) -> None:
        if event["kind"] == "step" and event["step"] == 4:
            stop.set()

    first = train(tiny_config, tmp_path / "split", on_event=stop_at_step_4, stop=stop)
    assert first.status == "stopped"
    meta, _ = load_checkpoint(tmp_path / "split")
    assert (meta["epoch"], meta["epoch_step"], meta["step"]) == (0, 4, 4)
    second = train(tiny_config, tmp_path / "split", resume=True)
    assert second.status == "done"
    whole, split = _epochs(tmp_path / "whole"), _epochs(tmp_path / "split")
    assert len(whole) == len(split) == 2
    for a, b in zip(whole, split, strict=True):
        for key in ("train_loss", "val_loss", "val_mcc", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-5)
    assert second.final["holdout_mcc"] == pytest.approx(reference.final["holdout_mcc"], abs=1e-5)
    steps_whole = [e["loss"] for e in read_metrics(tmp_path / "whole") if e["kind"] == "step"]
    steps_split = [e["loss"] for e in read_metrics(tmp_path / "split") if e["kind"] == "step"]
    assert steps_split == pytest.approx(steps_whole, abs=1e-5)
    # the map of the training data: every (epoch, sentence) recorded once, the same as without the stop
    import numpy as np

    with (
        np.load(tmp_path / "whole" / "training_dynamics.npz") as a,
        np.load(tmp_path / "split" / "training_dynamics.npz") as b,
    ):
        assert a["p_gold"].shape == b["p_gold"].shape == (2, tiny_config.train_limit)
        assert not np.isnan(b["p_gold"]).any()
        np.testing.assert_allclose(b["p_gold"], a["p_gold"], atol=1e-5)


def test_resume_at_an_epoch_boundary(tiny_config: TrainConfig, stopped_run: TrainedRun, tmp_path: Path) -> None:
    """The session's stopped run: tiny_config stopped when epoch 1's event came."""
    copy_run(stopped_run.path, tmp_path)
    assert stopped_run.status == "stopped" and TrainConfig.load(tmp_path / "run" / "config.json") == tiny_config
    meta, _ = load_checkpoint(tmp_path / "run")
    assert (meta["epoch"], meta["epoch_step"]) == (1, 0)
    result = train(tiny_config, tmp_path / "run", resume=True)
    assert result.status == "done" and [e["epoch"] for e in _epochs(tmp_path / "run")] == [1, 2]
    with pytest.raises(TrainingError, match="finished"):
        train(tiny_config, tmp_path / "run", resume=True)


def test_an_existing_run_is_not_overwritten(tiny_config: TrainConfig, done_run: TrainedRun, tmp_path: Path) -> None:
    copy_run(done_run.path, tmp_path)
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    with pytest.raises(TrainingError, match="already exists"):
        train(tiny_config, tmp_path / "run")
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


def test_a_locked_run_folder_is_refused(tiny_config: TrainConfig, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    with RunLock(folder):
        with pytest.raises(TrainingError, match="another training"):
            train(tiny_config, folder)


def test_invalid_config_names_the_field(tiny_config: TrainConfig, tmp_path: Path) -> None:
    tiny_config.learning_rate = -1
    with pytest.raises(TrainingError, match="learning_rate"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run" / "config.json").exists()


def test_nan_loss_stops_and_keeps_the_checkpoint_and_best_model(
    tiny_config: TrainConfig, stopped_run: TrainedRun, tmp_path: Path
) -> None:
    run = copy_run(stopped_run.path, tmp_path)  # stopped after epoch 1
    state_path = run / "checkpoint" / "state.pt"
    state = torch.load(state_path, weights_only=True)
    state["model"]["classifier.weight"].fill_(float("nan"))  # the weights go bad: the next loss is NaN
    torch.save(state, state_path)
    best_model = (run / "model" / "model.safetensors").read_bytes()
    meta_before = (run / "checkpoint" / "meta.json").read_text()

    result = train(tiny_config, run, resume=True)

    assert result.status == "failed" and "loss became nan" in result.error
    end = read_metrics(run)[-1]
    assert end["kind"] == "end" and end["status"] == "failed" and "nan" in end["error"]
    assert (run / "model" / "model.safetensors").read_bytes() == best_model
    assert (run / "checkpoint" / "meta.json").read_text() == meta_before


def test_runs_of_different_precision_in_one_process(tiny_config: TrainConfig, tmp_path: Path) -> None:
    """The TUI trains many runs in one process: fp32 then bf16 then fp32 must all work."""
    for name, precision in (("a", "fp32"), ("b", "bf16"), ("c", "fp32")):
        tiny_config.precision = precision
        tiny_config.epochs = 1
        events: list[dict[str, Any]] = []
        assert train(tiny_config, tmp_path / name, on_event=events.append).status == "done"
        assert events[0]["precision"] == ("bf16" if precision == "bf16" else "no")


def test_the_finish_after_the_last_step_announces_each_stage(done_run: TrainedRun) -> None:
    """After the last step: calibrating, each final split, each a stage event with
    its sentence count, in order, before the end event (a face shows them instead of a frozen ETA 0:00)."""
    events = read_metrics(done_run.path)
    kinds = [e["kind"] for e in events]
    last_step = max(i for i, kind in enumerate(kinds) if kind == "step")
    stages = [e for e in events if e["kind"] == "stage"]
    assert [e["index"] for e in stages] == [1, 2, 3] and all(e["stages"] == 3 for e in stages)
    assert [e["stage"] for e in stages] == [
        "calibrating the decision threshold",
        "evaluating in_domain_dev",
        "evaluating holdout",
    ]
    assert last_step < kinds.index("stage") and kinds[-1] == "end"
    start = next(e for e in events if e["kind"] == "start")
    report = json.loads((done_run.path / "eval.json").read_text())
    assert [e["sentences"] for e in stages] == [
        start["validation_sentences"],
        report["in_domain_dev"]["n"],
        report["holdout"]["n"],
    ]


def test_a_training_reads_its_data_once_and_so_does_its_resume(
    tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks load the data; the loop, the calibration, the final evaluation and the neighbour index
    use those frames (each stage read CoLA again: four reads a run)."""
    import workbench.core.data.cola as cola

    reads: list[object] = []
    real = cola.load_cola

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cola, "load_cola", counted)
    stop = threading.Event()
    stopped = train(
        tiny_config, tmp_path / "run", stop=stop, on_event=lambda e: stop.set() if e["kind"] == "epoch" else None
    )
    assert stopped.status == "stopped" and len(reads) == 1
    done = train(tiny_config, tmp_path / "run", resume=True)
    assert done.status == "done" and done.final and len(reads) == 2
