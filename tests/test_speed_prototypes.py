"""workbench.core.speed: frozen word embeddings and cached bf16 weights keep the maths they promise."""

from __future__ import annotations

import copy

import pytest


def _tiny_model(dropout: float = 0.1):  # type: ignore[no-untyped-def]
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def _batch():  # type: ignore[no-untyped-def]
    import torch

    generator = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(0, 64, (4, 10), generator=generator), "labels": torch.tensor([0, 1, 1, 0])}


def test_frozen_word_embeddings_stay_pretrained_and_leave_the_optimizer() -> None:
    import torch

    from workbench.core.speed import freeze_word_embeddings, trainable_parameters
    from workbench.core.train import parameter_groups

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


def test_bf16_weight_cache_trains_exactly_as_autocast() -> None:
    import torch

    from workbench.core.speed import Bf16WeightCache

    reference = _tiny_model()
    cached = copy.deepcopy(reference)
    opt_ref = torch.optim.AdamW(reference.parameters(), lr=1e-2, fused=True)
    opt_cached = torch.optim.AdamW(cached.parameters(), lr=1e-2, fused=True)
    cache = Bf16WeightCache(cached, opt_cached)  # refreshed by the optimizer's step post-hook
    assert len(cache.copies) == 2 * 6 + 2  # 6 Linears a layer, the pooler and the classifier
    batch = _batch()
    for step in range(4):
        losses = []
        for model, optimizer in ((reference, opt_ref), (cached, opt_cached)):
            torch.manual_seed(step)  # same dropout masks
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
        assert losses[0] == losses[1], step
    for (name, a), b in zip(reference.named_parameters(), cached.parameters(), strict=True):
        assert torch.equal(a, b), name
    # Without the refresh the copies would be stale: the forward must follow a step's new weights.
    assert torch.equal(cache.copies[0], cache.weights[0].to(torch.bfloat16))


def test_bf16_weight_cache_follows_load_state_dict_and_leaves_fp32_alone() -> None:
    import torch

    from workbench.core.speed import Bf16WeightCache

    model = _tiny_model(dropout=0.0).eval()
    other = _tiny_model(dropout=0.0).eval()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.5)
    cache = Bf16WeightCache(model)
    batch = _batch()
    with torch.no_grad():
        fp32_before = model(**batch).logits
        model.load_state_dict(other.state_dict())  # e.g. a resumed checkpoint
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cached_logits = model(**batch).logits
        cache.detach()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_logits = model(**batch).logits
        fp32_after = model(**batch).logits
    assert torch.equal(cached_logits, autocast_logits)  # the copies followed the loaded weights
    assert not torch.equal(fp32_before, fp32_after)
    assert torch.allclose(fp32_after, other(**batch).logits)  # outside autocast: the fp32 weights


def test_freeze_embeddings_setting_parses_as_a_bool() -> None:
    from workbench.core.config import TrainConfig, parse_bool, parse_field

    assert TrainConfig().freeze_embeddings is False
    assert parse_field("freeze_embeddings", " True ") is True
    assert parse_field("freeze_embeddings", "0") is False
    assert parse_bool("off") is False
    with pytest.raises(ValueError, match="freeze_embeddings"):
        parse_field("freeze_embeddings", "maybe")
    assert "freeze_embeddings" in TrainConfig(freeze_embeddings="false").validate()  # type: ignore[arg-type]
    assert TrainConfig.from_dict(TrainConfig(freeze_embeddings=True).to_dict()).freeze_embeddings is True
