"""The speed changes of the training step keep its maths (timings live in benchmarks/, not here)."""

from __future__ import annotations

import copy

import pytest


def _tiny_model():  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


@pytest.mark.parametrize("max_norm", [1e-3, 1.0, 1e6])  # clipped hard, sometimes, never
def test_clip_in_fused_adamw_matches_clip_grad_norm(max_norm: float) -> None:
    import torch
    from accelerate import Accelerator

    from workbench.core.train import clip_and_step

    torch.manual_seed(0)
    reference = _tiny_model()
    folded = copy.deepcopy(reference)
    accelerator = Accelerator(cpu=True)
    batch = {"input_ids": torch.randint(0, 64, (4, 10)), "labels": torch.tensor([0, 1, 1, 0])}
    opt_ref = torch.optim.AdamW(reference.parameters(), lr=1e-2, fused=True)
    opt_fold = torch.optim.AdamW(folded.parameters(), lr=1e-2, fused=True)
    for _ in range(3):
        reference(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
        opt_ref.step()
        opt_ref.zero_grad()
        folded(**batch).loss.backward()
        clip_and_step(accelerator, opt_fold, list(folded.parameters()), max_norm)
        opt_fold.zero_grad()
    assert not hasattr(opt_fold, "grad_scale")
    for (name, a), b in zip(reference.named_parameters(), folded.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name


def test_unfused_optimizer_clips_the_usual_way() -> None:
    import torch
    from accelerate import Accelerator

    from workbench.core.train import clip_and_step

    model = _tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, foreach=True)
    model(input_ids=torch.randint(0, 64, (2, 5)), labels=torch.tensor([0, 1])).loss.backward()
    clip_and_step(Accelerator(cpu=True), optimizer, list(model.parameters()), 1e-3)
    total = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    assert float(total) <= 1e-3 * 1.01  # the gradients themselves were clipped


def test_importing_workbench_asks_torch_for_huge_pages() -> None:
    import os

    import workbench  # noqa: F401

    assert os.environ.get("THP_MEM_ALLOC_ENABLE") in ("0", "1")
