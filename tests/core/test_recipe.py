"""workbench.core.training.recipe: dropout and reinit_top_layers reach the model train() builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.base.config import TrainConfig


def _load(folder: Path):  # type: ignore[no-untyped-def]
    from workbench.core.model.loading import load_model

    return load_model(str(folder))


def test_dropout_sets_every_dropout_and_zero_keeps_the_models_own(tiny_model_dir: Path) -> None:
    import torch

    from workbench.core.training.recipe import apply_recipe

    model = _load(tiny_model_dir)
    apply_recipe(model, TrainConfig(dropout=0.0))
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.1}  # BertConfig's own
    apply_recipe(model, TrainConfig(dropout=0.25))
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) >= 6 and {m.p for m in dropouts} == {0.25}
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.25
    # the attention layer reads its rate from its dropout module: training output changes with it
    model.train()
    batch = {"input_ids": torch.tensor([[101, 2023, 2003, 1037, 6251, 102]])}
    torch.manual_seed(0)
    with_dropout = model(**batch).logits
    apply_recipe(model, TrainConfig(dropout=1e-9))
    torch.manual_seed(0)
    assert not torch.allclose(with_dropout, model(**batch).logits)


def test_reinit_top_layers_redraws_only_the_top_layers(tiny_model_dir: Path) -> None:
    import torch

    from workbench.core.training.recipe import apply_recipe, reinit_top_layers

    pretrained = _load(tiny_model_dir)
    model = _load(tiny_model_dir)
    torch.manual_seed(0)
    apply_recipe(model, TrainConfig(reinit_top_layers=1))
    bottom, top = model.bert.encoder.layer
    old_bottom, old_top = pretrained.bert.encoder.layer
    for new, old in zip(bottom.parameters(), old_bottom.parameters(), strict=True):
        assert torch.equal(new, old)
    query = top.attention.self.query
    assert not torch.equal(query.weight, old_top.attention.self.query.weight)
    assert torch.all(query.bias == 0)  # _init_weights: Linear biases zero, LayerNorm weights one
    assert torch.all(top.output.LayerNorm.weight == 1)
    assert abs(float(query.weight.detach().std()) - model.config.initializer_range) < 0.01
    # the embeddings and the pooler are untouched
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, pretrained.bert.embeddings.word_embeddings.weight)
    assert torch.equal(model.bert.pooler.dense.weight, pretrained.bert.pooler.dense.weight)
    with pytest.raises(ValueError, match="only 2 encoder layers"):
        reinit_top_layers(model, 3)


def test_config_validates_the_new_settings() -> None:
    assert "dropout" in TrainConfig(dropout=1.0).validate()
    assert "dropout" in TrainConfig(dropout=-0.1).validate()
    assert "reinit_top_layers" in TrainConfig(reinit_top_layers=-1).validate()
    assert not TrainConfig(dropout=0.1, reinit_top_layers=2).validate()


def test_the_default_sweep_space_searches_them() -> None:
    from workbench.core.search.space import default_space

    names = default_space().names
    assert {"dropout", "reinit_top_layers", "freeze_embeddings"} <= set(names)


def test_train_applies_them_and_records_them(tiny_config: TrainConfig, tmp_path: Path) -> None:
    import json

    import torch

    from workbench.core.training.train import train

    config = TrainConfig(**{**tiny_config.to_dict(), "epochs": 1, "dropout": 0.05, "reinit_top_layers": 1})
    result = train(config, tmp_path / "run")
    assert result.status == "done"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["dropout"] == 0.05 and saved["reinit_top_layers"] == 1
    model_config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert model_config["hidden_dropout_prob"] == 0.05
    trained = _load(tmp_path / "run" / "model")
    pretrained = _load(Path(config.model))
    # one epoch at lr 1e-3 moves the weights a little; a re-initialised layer is far from the pretrained one
    top_gap = (
        (
            trained.bert.encoder.layer[1].attention.self.query.weight
            - pretrained.bert.encoder.layer[1].attention.self.query.weight
        )
        .abs()
        .mean()
    )
    bottom_gap = (
        (
            trained.bert.encoder.layer[0].attention.self.query.weight
            - pretrained.bert.encoder.layer[0].attention.self.query.weight
        )
        .abs()
        .mean()
    )
    assert float(top_gap.detach()) > 3 * float(bottom_gap.detach())
    assert torch.isfinite(top_gap)


@pytest.mark.parametrize(("epochs", "batch_size", "expected"), [(1, 0, 8), (2, 0, 32), (1, 16, 16)])
def test_batch_size_zero_picks_by_the_epochs_and_the_run_saves_the_one_it_used(
    tiny_config: TrainConfig, tmp_path: Path, epochs: int, batch_size: int, expected: int
) -> None:
    """0 (the default) trains a 1-epoch run at batch 8 and a longer one at 32; a batch size given is kept.
    Read from what the run did: its steps per epoch (64 sentences) and its saved config."""
    import json
    import math
    import threading

    from workbench.core.training.train import train

    config = TrainConfig(**{**tiny_config.to_dict(), "epochs": epochs, "batch_size": batch_size, "train_limit": 64})
    stop = threading.Event()
    starts: list[dict] = []

    def seen(event: dict) -> None:
        if event["kind"] == "start":
            starts.append(event)
            stop.set()  # the first batch is enough

    train(config, tmp_path / "run", on_event=seen, stop=stop)
    assert starts[0]["steps_per_epoch"] == math.ceil(64 / expected)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["batch_size"] == expected
    assert config.batch_size == batch_size  # the caller's config is not changed


def test_a_batch_size_below_zero_is_refused_with_what_zero_means() -> None:
    assert "0 to pick by the epochs" in TrainConfig(batch_size=-1).validate()["batch_size"]
    assert "batch_size" not in TrainConfig(batch_size=0).validate()


def test_a_saved_config_as_a_request_gives_back_0_where_0_picked_its_batch(tmp_path: Path) -> None:
    import json

    assert TrainConfig(epochs=1, batch_size=8).as_requested().batch_size == 0
    assert TrainConfig(epochs=8, batch_size=32).as_requested().batch_size == 0
    assert TrainConfig(epochs=1, batch_size=32).as_requested().batch_size == 32  # chosen: kept
    assert TrainConfig(epochs=8, batch_size=8).as_requested().batch_size == 8
    # a config.json from before batch_size 0 existed, or without the key, loads with what runs used then
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 1}))
    assert TrainConfig.load(tmp_path / "config.json").batch_size == 32
