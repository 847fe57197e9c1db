"""workbench.core.training.speed: frozen word embeddings and cached bf16 weights keep the maths they promise."""

from __future__ import annotations

from typing import Any

import pytest


def _tiny_model(dropout: float = 0.1):  # type: ignore[no-untyped-def]
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def _batch():  # type: ignore[no-untyped-def]
    import torch

    generator = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(0, 64, (4, 10), generator=generator), "labels": torch.tensor([0, 1, 1, 0])}


def test_frozen_word_embeddings_stay_pretrained_and_leave_the_optimizer() -> None:
    import torch

    from workbench.core.training.optim import parameter_groups
    from workbench.core.training.speed import freeze_word_embeddings, trainable_parameters

    model = _tiny_model()
    table_before = model.get_input_embeddings().weight.detach().clone()
    others_before = {n: p.detach().clone() for n, p in model.named_parameters() if "word_embeddings" not in n}
    total = trainable_parameters(model)
    assert freeze_word_embeddings(model) == 64 * 32
    assert trainable_parameters(model) == total - 64 * 32
    groups = parameter_groups(model, 1e-2, 0.01, 0.85)
    assert not any("word_embeddings" in name for g in groups for name in g["names"])
    optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], fused=True)
    model(**_batch()).loss.backward()
    assert model.get_input_embeddings().weight.grad is None  # no dense gradient at all
    optimizer.step()
    assert torch.equal(model.get_input_embeddings().weight, table_before)
    moved = [n for n, p in model.named_parameters() if n in others_before and not torch.equal(p, others_before[n])]
    assert "bert.embeddings.position_embeddings.weight" in moved
    assert "classifier.weight" in moved


def test_freeze_embeddings_setting_parses_as_a_bool() -> None:
    from workbench.core.base.config import TrainConfig, parse_bool, parse_field

    assert TrainConfig().freeze_embeddings is True  # the default since parity.py over 3 seeds
    assert parse_field("freeze_embeddings", " True ") is True
    assert parse_field("freeze_embeddings", "0") is False
    assert parse_bool("off") is False
    with pytest.raises(ValueError, match="freeze_embeddings"):
        parse_field("freeze_embeddings", "maybe")
    assert "freeze_embeddings" in TrainConfig(freeze_embeddings="false").validate()  # type: ignore[arg-type]
    assert TrainConfig.from_dict(TrainConfig(freeze_embeddings=True).to_dict()).freeze_embeddings is True


def test_a_run_saved_before_the_setting_existed_resumes_with_the_table_trained(tmp_path: Any) -> None:
    import json

    from workbench.core.base.config import TrainConfig

    old = TrainConfig().to_dict()
    del old["freeze_embeddings"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert TrainConfig.load(tmp_path / "old.json").freeze_embeddings is False  # as it trained then
    TrainConfig().save(tmp_path / "new.json")
    assert TrainConfig.load(tmp_path / "new.json").freeze_embeddings is True


@pytest.mark.parametrize("freeze", [True, False])
def test_train_keeps_the_table_by_default_and_trains_it_when_told(
    tiny_config: Any, tmp_path: Any, freeze: bool
) -> None:
    from safetensors.torch import load_file

    from workbench.core.training.train import train

    tiny_config.epochs, tiny_config.calibrate_threshold = 1, False
    if not freeze:
        tiny_config.freeze_embeddings = False
    assert train(tiny_config, tmp_path / "run").status == "done"
    key = "bert.embeddings.word_embeddings.weight"
    before = load_file(f"{tiny_config.model}/model.safetensors")[key]
    after = load_file(tmp_path / "run" / "model" / "model.safetensors")[key]
    assert after.equal(before) is freeze
