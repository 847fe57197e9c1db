"""Recipe settings applied to a freshly loaded model, before the optimizer sees it.

* `dropout` (TrainConfig.dropout, 0 keeps the model's own): every dropout of the encoder and the
  classifier head (hidden, attention probabilities, pooled output) set to one rate. The model's
  config records it too, so the saved folder says what it was trained with.
* `reinit_top_layers` (TrainConfig.reinit_top_layers, 0 keeps all): the top N encoder layers
  drawn afresh with the model's own `_init_weights`, as in "Revisiting Few-sample BERT
  Fine-tuning" (Zhang et al., 2021): the top layers of a pretrained encoder are specialised to its
  pretraining task and can be a worse start than random ones for a small classification set.

`apply_recipe(model, config)` is the one call train() makes, right after loading the model.
Nothing here imports torch at module level.
"""

from __future__ import annotations

from typing import Any

DROPOUT_CONFIG_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")


def set_dropout(model: Any, rate: float) -> int:
    """Set every dropout module of MODEL to RATE (and its config's dropout keys); return how many."""
    import torch

    for key in DROPOUT_CONFIG_KEYS:
        if hasattr(model.config, key):
            setattr(model.config, key, rate)
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = rate
            count += 1
    return count


def encoder_layers(model: Any) -> Any:
    """The encoder's list of layers (BERT-style `encoder.layer`, or `layers`); ValueError if none."""
    encoder = getattr(model.base_model, "encoder", None)
    for name in ("layer", "layers"):
        layers = getattr(encoder, name, None)
        if layers is not None:
            return layers
    raise ValueError(f"{type(model).__name__}: no encoder layer list to re-initialise")


def reinit_top_layers(model: Any, count: int) -> int:
    """Re-initialise the top COUNT encoder layers with MODEL's own `_init_weights`; return how many.

    Loaded weights are marked as initialised (transformers skips them), so the mark is cleared
    first. Draws from torch's global generator: the run's seed makes it repeatable."""
    layers = encoder_layers(model)
    if count > len(layers):
        raise ValueError(f"reinit_top_layers {count}: the model has only {len(layers)} encoder layers")
    for layer in list(layers)[len(layers) - count :]:
        for tensor in [*layer.parameters(), *layer.buffers()]:
            if hasattr(tensor, "_is_hf_initialized"):
                tensor._is_hf_initialized = False
        layer.apply(model._init_weights)
    return count


def apply_recipe(model: Any, config: Any) -> None:
    """CONFIG's model-side settings (dropout, reinit_top_layers) applied to the loaded MODEL."""
    if config.dropout > 0:
        set_dropout(model, config.dropout)
    if config.reinit_top_layers > 0:
        reinit_top_layers(model, config.reinit_top_layers)
