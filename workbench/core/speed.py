"""Less work per training step: small, self-contained changes that train() can switch on.

* `freeze_word_embeddings(model)`: the 30,522 x 384 word-embedding table takes no gradient. That
  removes its dense gradient (zeroed every step), half of the fused AdamW's work and half of the
  gradient norm. It changes the recipe (the table stays as pretrained), so it is a setting
  (`TrainConfig.freeze_embeddings`), to become the default only if quality over 3 seeds holds.
* `Bf16WeightCache`: bf16 copies of every Linear weight, refreshed once after each optimizer step
  (one foreach copy) instead of autocast casting every weight at every forward. Same maths as
  autocast (the copy is the same round-to-nearest cast); measured in benchmarks/ab_speed.py.

Nothing here imports torch at module level, so `workbench.core` stays light to import.
"""

from __future__ import annotations

from typing import Any


def freeze_word_embeddings(model: Any) -> int:
    """Stop MODEL's word-embedding table from training; return how many parameters it holds.

    Call before the optimizer's parameter groups are built (they skip frozen parameters).
    Position and token-type embeddings, LayerNorms and the encoder still train."""
    table = model.get_input_embeddings().weight
    table.requires_grad_(False)
    table.grad = None
    return int(table.numel())


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _linear_bf16_function() -> Any:
    import torch

    class LinearBf16(torch.autograd.Function):
        """y = x16 @ w16.T + b16 with the cached bf16 weight; gradients for the fp32 weight and bias.

        The backward is autocast's: the weight gradient is a bf16 matmul, cast to fp32."""

        @staticmethod
        def forward(ctx: Any, x16: Any, weight: Any, bias: Any, weight16: Any) -> Any:
            bias16 = None if bias is None else bias.to(torch.bfloat16)
            ctx.save_for_backward(x16, weight16)
            ctx.has_bias = bias is not None
            return torch.nn.functional.linear(x16, weight16, bias16)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            x16, weight16 = ctx.saved_tensors
            grad = grad.to(torch.bfloat16)
            grad_x = grad @ weight16 if ctx.needs_input_grad[0] else None
            grad_2d = grad.reshape(-1, grad.shape[-1])
            grad_w = (grad_2d.t() @ x16.reshape(-1, x16.shape[-1])).float() if ctx.needs_input_grad[1] else None
            grad_b = grad_2d.sum(0).float() if ctx.has_bias and ctx.needs_input_grad[2] else None
            return grad_x, grad_w, grad_b, None

    return LinearBf16


class Bf16WeightCache:
    """Keep a bf16 copy of every nn.Linear weight of MODEL, refreshed after each OPTIMIZER step.

    While attached, a Linear in a bf16-autocast region computes with its cached copy (no per-forward
    cast); outside autocast (fp32 evaluation) it runs as before. The copies follow the fp32 weights
    through an optimizer step post-hook and a load_state_dict post-hook, so resuming and stepping
    need no extra calls. `detach()` restores the modules."""

    def __init__(self, model: Any, optimizer: Any | None = None):
        import torch

        self._torch = torch
        self._function = _linear_bf16_function()
        self.modules = [m for m in model.modules() if isinstance(m, torch.nn.Linear)
                        and m.weight.dtype == torch.float32]
        self.weights = [m.weight for m in self.modules]
        self.copies = [torch.empty_like(w, dtype=torch.bfloat16) for w in self.weights]
        self._handles: list[Any] = []
        for module, copy in zip(self.modules, self.copies, strict=True):
            module.forward = self._forward_for(module, copy)  # type: ignore[method-assign]
        if optimizer is not None:
            inner = getattr(optimizer, "optimizer", optimizer)  # Accelerate's wrapper
            self._handles.append(inner.register_step_post_hook(lambda *_: self.refresh()))
        self._handles.append(model.register_load_state_dict_post_hook(lambda *_: self.refresh()))
        self.refresh()

    def _forward_for(self, module: Any, copy: Any) -> Any:
        torch = self._torch
        function = self._function

        def forward(x: Any) -> Any:
            if not torch.is_autocast_enabled(x.device.type) or \
                    torch.get_autocast_dtype(x.device.type) != torch.bfloat16:
                return torch.nn.functional.linear(x, module.weight, module.bias)
            return function.apply(x.to(torch.bfloat16), module.weight, module.bias, copy)

        return forward

    def refresh(self) -> None:
        """Copy the fp32 weights into their bf16 copies (one foreach op)."""
        with self._torch.no_grad():
            self._torch._foreach_copy_(self.copies, self.weights)

    def detach(self) -> None:
        for module in self.modules:
            del module.forward  # back to the class's forward
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
