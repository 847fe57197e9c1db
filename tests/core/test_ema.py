"""Weight averaging during training (--ema-decay), the head's own seed and its own learning rate."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import matthews_corrcoef

from workbench.core.base.config import TrainConfig
from workbench.core.runs.metrics import read_metrics
from workbench.core.training.checkpoint import load_checkpoint
from workbench.core.training.optim import WeightAverage, parameter_groups
from workbench.core.training.prepare import initial_model
from workbench.core.training.train import train


def _epochs(run: Path) -> list[dict[str, Any]]:
    return [e for e in read_metrics(run) if e["kind"] == "epoch"]


def test_weight_average_is_the_hand_computed_exponential_average() -> None:
    decay = 0.9
    params = [torch.nn.Parameter(torch.tensor([1.0, -2.0])), torch.nn.Parameter(torch.tensor([[3.0]]))]
    average = WeightAverage(params, decay)
    history = [[p.detach().numpy().copy() for p in params]]
    for step in range(3):
        with torch.no_grad():
            params[0].add_(float(step + 1))
            params[1].mul_(-2.0)
        average.update(params)
        history.append([p.detach().numpy().copy() for p in params])
    for index in range(2):
        expected = history[0][index]
        for values in history[1:]:
            expected = decay * expected + (1 - decay) * values[index]
        np.testing.assert_allclose(average.tensors[index].numpy(), expected, rtol=1e-6)
    assert params[0].tolist() == [7.0, 4.0]  # the live weights are untouched by the average


def test_swapped_in_puts_the_average_in_and_the_live_weights_back() -> None:
    params = [torch.nn.Parameter(torch.tensor([1.0, 2.0]))]
    average = WeightAverage(params, 0.5)
    with torch.no_grad():
        params[0].add_(2.0)
    average.update(params)  # 0.5 * [1, 2] + 0.5 * [3, 4]
    with average.swapped_in(params):
        assert params[0].tolist() == [2.0, 3.0]
    assert params[0].tolist() == [3.0, 4.0]


def _validation_mcc(model: Any, config: TrainConfig) -> float:
    """The validation MCC at argmax of MODEL, computed here with sklearn."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import logits_for
    from workbench.core.model.loading import load_tokenizer

    frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, load_tokenizer(config.model), frame["sentence"].tolist(), config.max_length, 256)
    return float(matthews_corrcoef(frame["label"].to_numpy(), np.asarray(logits).argmax(-1)))


def _centred(model_dir: Path, config: TrainConfig, target: Path) -> Path:
    """The tiny BERT with its acceptable bias moved to the middle of its validation log-odds (between the two
    middle sentences): half the validation sentences fall on each side, so its MCC is not 0 by default."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import logits_for
    from workbench.core.model.loading import load_model, load_tokenizer

    model, tokenizer = load_model(str(model_dir)), load_tokenizer(str(model_dir))
    frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, tokenizer, frame["sentence"].tolist(), config.max_length, 256)
    ordered = np.sort(logits[:, 1] - logits[:, 0])
    middle = len(ordered) // 2
    with torch.no_grad():
        model.classifier.bias[1] -= float(ordered[middle - 1] + ordered[middle]) / 2
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    return target


def test_ema_run_validates_both_and_keeps_the_better_as_the_model(tiny_config: TrainConfig, tmp_path: Path) -> None:
    """The epoch records both validation MCCs, each what scikit-learn gives the weights it names (the live
    ones in the checkpoint, their average beside them); its val_mcc is the better, model/ holds those
    weights. The model starts centred and learns slowly (lr 1e-6) under a slow average (0.99): the average
    stays near the start and the live weights move, so the two MCCs differ, and validating the live weights
    in place of the average would show."""
    from safetensors.torch import load_file

    from workbench.core.model.loading import load_model

    tiny_config.model = str(_centred(Path(tiny_config.model), tiny_config, tmp_path / "centred"))
    tiny_config.epochs, tiny_config.ema_decay, tiny_config.calibrate_threshold = 1, 0.99, False
    tiny_config.learning_rate, tiny_config.warmup_ratio = 1e-6, 0.0
    run = tmp_path / "run"
    assert train(tiny_config, run).status == "done"
    (epoch,) = _epochs(run)
    assert epoch["val_mcc"] == max(epoch["raw_val_mcc"], epoch["ema_val_mcc"])
    assert epoch["weights"] == ("ema" if epoch["ema_val_mcc"] > epoch["raw_val_mcc"] else "raw")
    _, state = load_checkpoint(run)
    model = load_model(tiny_config.model)
    trainable = [
        name for name, p in model.named_parameters() if p.requires_grad and "word_embeddings" not in name
    ]  # the table is frozen by default: not averaged
    assert len(state["ema"]) == len(trainable)
    averaged = dict(zip(trainable, state["ema"], strict=True))
    assert any(not torch.equal(averaged[n], state["model"][n]) for n in trainable)  # the average is not the weights
    saved = load_file(run / "model" / "model.safetensors")
    kept = averaged if epoch["weights"] == "ema" else state["model"]
    for name in trainable:
        torch.testing.assert_close(saved[name], kept[name], rtol=0, atol=0)
    model.load_state_dict(state["model"])
    live_mcc = _validation_mcc(model, tiny_config)
    model.load_state_dict({**state["model"], **averaged})
    average_mcc = _validation_mcc(model, tiny_config)
    assert live_mcc != average_mcc  # the run tells the two apart
    assert (epoch["raw_val_mcc"], epoch["ema_val_mcc"]) == pytest.approx((live_mcc, average_mcc), abs=1e-9)


def test_ema_stop_then_resume_equals_an_uninterrupted_run(tiny_config: TrainConfig, tmp_path: Path) -> None:
    tiny_config.ema_decay = 0.8
    reference = train(tiny_config, tmp_path / "whole")
    stop = threading.Event()

    def stop_at_step_4(event: dict[str, Any]) -> None:
        if event["kind"] == "step" and event["step"] == 4:
            stop.set()

    assert train(tiny_config, tmp_path / "split", on_event=stop_at_step_4, stop=stop).status == "stopped"
    meta, state = load_checkpoint(tmp_path / "split")
    assert meta["step"] == 4 and "ema" in state
    assert train(tiny_config, tmp_path / "split", resume=True).status == "done"
    whole, split = _epochs(tmp_path / "whole"), _epochs(tmp_path / "split")
    assert len(whole) == len(split) == 2
    for a, b in zip(whole, split, strict=True):
        for key in ("raw_val_mcc", "ema_val_mcc", "val_mcc", "val_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-5)
        assert a["weights"] == b["weights"]
    _, whole_state = load_checkpoint(tmp_path / "whole")
    _, split_state = load_checkpoint(tmp_path / "split")
    for a, b in zip(whole_state["ema"], split_state["ema"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    final = json.loads((tmp_path / "split" / "eval.json").read_text())
    assert final["holdout"]["mcc"] == pytest.approx(reference.final["holdout_mcc"], abs=1e-5)


def test_ema_decay_out_of_range_is_refused_naming_the_field(tiny_config: TrainConfig) -> None:
    assert "ema_decay" in TrainConfig(ema_decay=1.0).validate()
    assert "head_seed" in TrainConfig(head_seed=-2).validate()
    assert "head_lr_multiplier" in TrainConfig(head_lr_multiplier=0).validate()


# ---------------------------------------------------------------- the head's seed


@pytest.fixture(scope="module")
def headless_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT encoder saved without a classifier: loading it for classification draws a fresh head."""
    from transformers import BertConfig, BertModel

    from workbench.core.model.loading import ID2LABEL, LABEL2ID, load_tokenizer

    folder = tmp_path_factory.mktemp("headless")
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _start(config: TrainConfig) -> Any:
    from accelerate.utils import set_seed

    set_seed(config.seed)  # as train() does before building the model
    model = initial_model(config)
    after = torch.rand(3)  # the next draw (dropout's first): from --seed alone
    return model, after


def test_a_shared_head_seed_shares_the_head_and_varies_the_rest(headless_model_dir: Path) -> None:
    base = TrainConfig(model=str(headless_model_dir), reinit_top_layers=1, head_seed=7)
    (a, a_next), (b, b_next) = (
        _start(TrainConfig(**{**base.to_dict(), "seed": 1})),
        _start(TrainConfig(**{**base.to_dict(), "seed": 2})),
    )
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    top = "bert.encoder.layer.1.output.dense.weight"  # re-initialised from --seed
    assert not torch.equal(a.state_dict()[top], b.state_dict()[top])
    assert not torch.equal(a_next, b_next)
    c, _ = _start(TrainConfig(**{**base.to_dict(), "seed": 1, "head_seed": 8}))
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_without_a_head_seed_the_draws_are_those_of_before(headless_model_dir: Path) -> None:
    """head_seed -1 (the default) and head_seed == seed give what set_seed(seed) + load gave before."""
    from accelerate.utils import set_seed

    from workbench.core.model.loading import load_model

    set_seed(5)
    before = load_model(str(headless_model_dir))
    next_before = torch.rand(3)
    for head_seed in (-1, 5):
        model, after = _start(TrainConfig(model=str(headless_model_dir), seed=5, head_seed=head_seed))
        assert torch.equal(model.classifier.weight, before.classifier.weight)
        assert torch.equal(after, next_before)


def test_head_learning_rate_multiplier_gives_the_head_its_own_rate(tiny_model_dir: Path) -> None:
    from workbench.core.model.loading import load_model

    model = load_model(str(tiny_model_dir))
    plain = parameter_groups(model, 1e-3, 0.01, layer_lr_decay=0.5)
    groups = parameter_groups(model, 1e-3, 0.01, layer_lr_decay=0.5, head_lr_multiplier=10)
    rate = {n: g["lr"] for g in groups for n in g["names"]}
    assert rate["classifier.weight"] == pytest.approx(1e-2)
    assert rate["bert.pooler.dense.bias"] == pytest.approx(1e-2)
    assert rate["bert.encoder.layer.1.output.dense.weight"] == pytest.approx(5e-4)  # as without it
    assert rate["bert.encoder.layer.0.output.dense.weight"] == pytest.approx(2.5e-4)
    # with 1, the groups (and their order) are those of before: older checkpoints' optimizer state still fits
    assert [g["names"] for g in parameter_groups(model, 1e-3, 0.01, 0.5, 1.0)] == [g["names"] for g in plain]
