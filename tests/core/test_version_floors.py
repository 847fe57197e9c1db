"""The dependency floors are true: what newer torch and transformers added has a fallback, checked here
by taking the newer attribute away (.ci/lowest.sh also runs the core tests on the lowest transformers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from workbench.core.base.config import TrainConfig
from workbench.core.model.loading import load_model
from workbench.core.training import speed
from workbench.core.training.step import total_norm
from workbench.core.training.train import train


def test_total_norm_without_get_total_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    grads = [torch.randn(3, 4, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    by_hand = float(np.sqrt(sum(float((g.numpy().astype(np.float64) ** 2).sum()) for g in grads)))
    assert float(total_norm(grads)) == pytest.approx(by_hand, rel=1e-5)
    monkeypatch.delattr(torch.nn.utils, "get_total_norm", raising=False)  # torch before 2.6
    assert float(total_norm(grads)) == pytest.approx(by_hand, rel=1e-5)


def test_training_on_a_torch_without_get_total_norm(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(torch.nn.utils, "get_total_norm", raising=False)
    data = tmp_path / "d.tsv"
    from workbench.core.data.cola import project_data_dir

    lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()[:60]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = TrainConfig(
        model=str(tiny_model_dir), data=str(data), epochs=1, batch_size=16, precision="fp32", learning_rate=1e-3
    )
    result = train(config, tmp_path / "run")
    assert result.status == "done", result.error


NEEDS_INTERFACE = pytest.mark.skipif(
    speed.attention_helpers() is None, reason="this transformers is older than its attention interface"
)


def test_no_cls_only_layer_on_a_transformers_without_the_attention_interface(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers.modeling_utils

    model = load_model(str(tiny_model_dir)).eval()
    batch = {
        "input_ids": torch.randint(1000, 2000, (4, 9), generator=torch.Generator().manual_seed(0)),
        "attention_mask": torch.ones(4, 9, dtype=torch.long),
    }
    with torch.no_grad():
        expected = model(**batch).logits
    if speed.attention_helpers() is not None:  # a newer transformers: take it away, as 4.46 lacks it
        monkeypatch.delattr(transformers.modeling_utils, "ALL_ATTENTION_FUNCTIONS")
    assert speed.attention_helpers() is None
    assert speed.cls_only_last_layer(model) is False
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, expected)  # the model is left as it was


@NEEDS_INTERFACE
def test_the_cls_only_layer_returns_what_the_encoder_of_its_transformers_reads(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir)).eval()
    hidden = torch.randn(2, 7, model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    major = int(transformers.__version__.split(".")[0])
    assert speed.cls_only_last_layer(model)
    layer = speed.__dict__["_cls_only_forward"]  # built for this transformers
    from workbench.core.training.recipe import encoder_layers

    last = encoder_layers(model)[-1]
    with torch.no_grad():
        out = last(hidden)
    assert isinstance(out, tuple) == (major < 5)
    assert speed.layer_returns_tuple("4.57.0") and not speed.layer_returns_tuple("5.0.0")
    heads = model.config.num_attention_heads
    rebuilt = layer(last, heads, model.config.hidden_size // heads, as_tuple=True)  # for a 4.x encoder
    with torch.no_grad():
        as_four = rebuilt(hidden)
    assert isinstance(as_four, tuple) and as_four[0].shape == (2, 1, model.config.hidden_size)
    assert torch.allclose(as_four[0], out[0] if isinstance(out, tuple) else out)
