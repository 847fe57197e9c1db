"""Real faults inside a real training: hooks on the model that `train()` loads.

`train()` loads its model itself, so a test reaches it through one seam: the module
attribute `workbench.core.model.loading.load_model`, wrapped (the real loader still loads the
real model) so that HOOK can register torch hooks on the first model loaded, the one
trained. The training loop under test is untouched; the faults are what torch itself
produces: an infinite gradient flowing back through autograd into the real optimizer
step, the RuntimeError the CPU allocator raises, an exception in a forward pass."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Hook = Callable[[Any], None]


def on_training_model(hook: Hook) -> Callable[..., Any]:
    """A load_model that calls HOOK(model) on the first model it loads (the one train() trains)."""
    import workbench.core.model.loading as model_module

    real = model_module.load_model
    loaded: list[Any] = []

    def load_model(name: str, allow_pickle: bool = False) -> Any:
        model = real(name, allow_pickle=allow_pickle)
        if not loaded:
            loaded.append(model)
            hook(model)
        return model

    return load_model


def training_forwards(model: Any, at: Callable[[int], bool], action: Callable[[Any, Any], Any]) -> None:
    """Run ACTION(module, output) after the Nth training forward of MODEL for each N where AT(N)."""
    calls = {"n": 0}

    def after_forward(module: Any, inputs: Any, output: Any) -> Any:
        if not module.training:
            return None
        calls["n"] += 1
        return action(module, output) if at(calls["n"]) else None

    model.register_forward_hook(after_forward)


def infinite_gradient_at(step: int) -> Hook:
    """From training step STEP on, the gradient flowing back out of the pooler is +inf:
    the loss stays finite, every weight below the pooler gets a non-finite gradient."""

    def hook(model: Any) -> None:
        import torch

        calls = {"n": 0}

        def after_pooler(module: Any, inputs: Any, output: Any) -> None:
            if module.training:
                calls["n"] += 1
                if calls["n"] == step and output.requires_grad:
                    output.register_hook(lambda grad: torch.full_like(grad, math.inf))

        model.bert.pooler.register_forward_hook(after_pooler)

    return hook


def cpu_out_of_memory(when: str, step: int = 2) -> Hook:
    """What the CPU allocator raises when memory runs out (a RuntimeError, not
    torch.OutOfMemoryError): asking it for 2**60 floats fails at once, nothing is allocated.
    WHEN is 'train' (the STEPth training forward) or 'eval' (the first validation forward)."""

    def hook(model: Any) -> None:
        import torch

        calls = {"train": 0}

        def before_forward(module: Any, args: Any, kwargs: Any) -> None:
            if module.training:
                calls["train"] += 1
            if (when == "train" and module.training and calls["train"] == step) or (
                when == "eval" and not module.training
            ):
                torch.empty(2**60)  # RuntimeError: DefaultCPUAllocator: can't allocate memory ...

        model.register_forward_pre_hook(before_forward, with_kwargs=True)

    return hook
