"""The speed changes of the training step keep its maths (timings live in benchmarks/, not here)."""

from __future__ import annotations

import copy

import pytest

from workbench.core.training import speed as speed_module


def _tiny_model():  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config)


@pytest.mark.parametrize("max_norm", [1e-3, 1.0, 1e6])  # clipped hard, sometimes, never
def test_clip_in_fused_adamw_matches_clip_grad_norm(max_norm: float) -> None:
    import torch
    from accelerate import Accelerator

    from workbench.core.training.step import clip_and_step

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

    from workbench.core.training.step import clip_and_step

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


def _layered_model(layers: int = 3, dropout: float = 0.0, attn: str = "sdpa"):  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    config._attn_implementation = attn
    return BertForSequenceClassification(config)


def _assert_same_logits_and_gradients(reference, model):  # type: ignore[no-untyped-def]
    """REFERENCE and MODEL (training mode) give the same logits and gradients on a padded batch of 4;
    (the batch's ids, its mask)."""
    import torch

    ids = torch.randint(5, 64, (4, 9))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # padded rows: every query (the [CLS]-only one too) must still ignore the padding keys
    mask[3, 2:] = 0
    labels = torch.tensor([0, 1, 1, 0])
    a = reference(input_ids=ids, attention_mask=mask, labels=labels)
    b = model(input_ids=ids, attention_mask=mask, labels=labels)
    a.loss.backward()
    b.loss.backward()
    assert torch.allclose(a.logits, b.logits, atol=1e-6)
    for (name, p), q in zip(reference.named_parameters(), model.parameters(), strict=True):
        assert q.grad is not None, name
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    return ids, mask


@pytest.mark.skipif(
    speed_module.attention_helpers() is None,
    reason="this transformers has no attention interface: the [CLS]-only layer is not installed",
)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_cls_only_last_layer_gives_the_same_logits_and_gradients(attn: str) -> None:
    import torch

    from workbench.core.training.speed import cls_only_last_layer

    torch.manual_seed(0)
    full = _layered_model(attn=attn).train()
    fast = copy.deepcopy(full)
    assert cls_only_last_layer(fast)
    ids, mask = _assert_same_logits_and_gradients(full, fast)
    # the skipped work really is skipped: the last layer hands the head one position
    assert fast.bert(input_ids=ids, attention_mask=mask).last_hidden_state.shape[1] == 1
    # and without the padding mask it still matches
    assert torch.allclose(full(input_ids=ids).logits, fast(input_ids=ids).logits, atol=1e-6)


def test_cls_only_last_layer_leaves_other_heads_alone() -> None:
    from transformers import BertConfig, BertForTokenClassification

    from workbench.core.training.speed import cls_only_last_layer

    token_model = BertForTokenClassification(
        BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    assert cls_only_last_layer(token_model) is False  # its head reads every position
    assert "forward" not in vars(token_model.bert.encoder.layer[-1])


def test_cheap_dropout_drops_p_and_rescales_like_torch() -> None:
    import torch

    from workbench.core.training.speed import dropout_noise

    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.ones(400, 1000, dtype=dtype)
        noise = dropout_noise(x, 0.1)
        assert noise.dtype == dtype and noise.shape == x.shape
        assert set(noise.unique().tolist()) == {0.0, torch.tensor(1 / 0.9, dtype=dtype).item()}
        assert abs((noise == 0).float().mean().item() - 0.1) < 0.003  # 400,000 draws: 0.1 +- 3.5 sigma
    odd = dropout_noise(torch.ones(7), 0.5)  # an odd count uses half of the last draw
    assert odd.shape == (7,)
    torch.manual_seed(3)
    first = dropout_noise(torch.ones(64, 64), 0.3)
    torch.manual_seed(3)
    assert torch.equal(first, dropout_noise(torch.ones(64, 64), 0.3))  # torch's seed governs it
    # both 15-bit halves of a draw are used and independent: the two halves' masks differ
    assert not torch.equal(first.flatten()[:2048], first.flatten()[2048:])


def test_cheap_dropout_trains_and_evaluates_like_nn_dropout() -> None:
    import torch

    from workbench.core.training.speed import cheap_dropout

    torch.manual_seed(0)
    model = _layered_model(layers=1, dropout=0.5)
    assert cheap_dropout(model) == sum(type(m) is torch.nn.Dropout for m in model.modules())
    ids = torch.randint(5, 64, (8, 6))
    reference = copy.deepcopy(model)
    model.eval()
    reference.eval()
    assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)  # eval: no dropout
    model.train()
    dropout = model.bert.embeddings.dropout
    x = torch.randn(50, 50, requires_grad=True)
    y = dropout(x)
    kept = y != 0
    assert 0.3 < kept.float().mean().item() < 0.7
    assert torch.allclose(y[kept], x[kept] * 2.0)
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() * 2.0)  # the gradient goes through the kept elements only


def _has_attention_and_mask_interfaces() -> bool:
    try:
        import transformers.masking_utils  # noqa: F401
    except ImportError:
        return False
    return speed_module.attention_helpers() is not None


needs_interfaces = pytest.mark.skipif(
    not _has_attention_and_mask_interfaces(),
    reason="this transformers has no attention and mask interfaces: the CPU attention is not installed",
)


@pytest.mark.parametrize("boolean", [False, True])
def test_attention_in_compute_dtype_is_torch_attention(boolean: bool) -> None:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from workbench.core.training.speed import attention_in_compute_dtype

    torch.manual_seed(0)
    query, key, value = (torch.randn(3, 2, 7, 8) for _ in range(3))
    keep = torch.ones(3, 1, 7, 7, dtype=torch.bool)
    keep[1, :, :, 4:] = False  # padding keys
    keep[2, :, :, 6:] = False
    mask = keep if boolean else torch.zeros(3, 1, 7, 7).masked_fill(~keep, torch.finfo(torch.float32).min)
    module = torch.nn.Module().eval()
    out, weights = attention_in_compute_dtype(module, query, key, value, mask, scaling=0.3, dropout=0.5)
    reference = F.scaled_dot_product_attention(query, key, value, attn_mask=keep, scale=0.3).transpose(1, 2)
    assert weights is None and out.shape == (3, 7, 2, 8)
    assert torch.allclose(out, reference, atol=1e-6)  # eval: no dropout although one is asked


@needs_interfaces
def test_cpu_attention_gives_the_same_logits_and_gradients() -> None:
    import torch

    from workbench.core.training.speed import CPU_ATTENTION, cpu_attention

    torch.manual_seed(0)
    reference = _layered_model().train()  # torch's SDPA
    model = copy.deepcopy(reference)
    assert cpu_attention(model) and model.config._attn_implementation == CPU_ATTENTION
    assert reference.config._attn_implementation == "sdpa"  # a copy's switch leaves the original alone
    _assert_same_logits_and_gradients(reference, model)


def test_attention_in_compute_dtype_drops_weights_like_dropout() -> None:
    import torch

    from workbench.core.training.speed import attention_in_compute_dtype

    torch.manual_seed(0)
    query, key = torch.randn(64, 4, 8, 8), torch.randn(64, 4, 8, 8)
    value = torch.eye(8).expand(64, 4, 8, 8)  # one-hot values: the output is the attention weights themselves
    weights = torch.softmax(query @ key.transpose(2, 3) * 0.5, dim=-1).transpose(1, 2)
    module = torch.nn.Module().train()
    torch.manual_seed(1)
    out, _ = attention_in_compute_dtype(module, query, key, value, None, scaling=0.5, dropout=0.25)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - 0.25) < 0.01  # 131,072 weights: 0.25 +- 8 sigma
    assert torch.allclose(out[~dropped], weights[~dropped] / 0.75, atol=1e-6)  # the kept ones rescaled
    torch.manual_seed(1)
    again, _ = attention_in_compute_dtype(module, query, key, value, None, scaling=0.5, dropout=0.25)
    assert torch.equal(out, again)  # torch's seed governs the masks


@needs_interfaces
def test_cpu_attention_runs_in_every_layer_in_bf16_with_the_cls_only_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from workbench.core.training.speed import cls_only_last_layer, cpu_attention

    seen: list[tuple[torch.dtype, tuple[int, ...], float]] = []
    real = speed_module.attention_in_compute_dtype

    def spy(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((query.dtype, tuple(query.shape), dropout))
        return real(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)

    monkeypatch.setattr(speed_module, "attention_in_compute_dtype", spy)  # what cpu_attention registers
    torch.manual_seed(0)
    model = _layered_model(layers=3, dropout=0.1).train()
    assert cls_only_last_layer(model) and cpu_attention(model)
    ids = torch.randint(5, 64, (4, 9))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 1, 0])).loss.backward()
    # every layer's attention went through it, in bf16, with the training's dropout; the last one for [CLS] only
    assert [shape[2] for _, shape, _ in seen] == [9, 9, 1], seen
    assert all(dtype == torch.bfloat16 and p == 0.1 for dtype, _, p in seen), seen
    seen.clear()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    assert [p for _, _, p in seen] == [0.0, 0.0, 0.0]  # validation: no attention dropout


@needs_interfaces
def test_cpu_attention_is_not_saved_with_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from transformers import AutoModelForSequenceClassification, BertConfig, BertForTokenClassification

    from workbench.core.training.speed import CPU_ATTENTION, cpu_attention

    model = _layered_model(layers=1)
    assert cpu_attention(model)
    model.save_pretrained(tmp_path)
    assert CPU_ATTENTION not in (tmp_path / "config.json").read_text()
    json.loads((tmp_path / "config.json").read_text())
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config._attn_implementation != CPU_ATTENTION
    token_model = BertForTokenClassification(
        BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    assert cpu_attention(token_model) is False  # outside the sequence classifiers it is left alone
    assert token_model.config._attn_implementation != CPU_ATTENTION
