"""Less work per training step: small, self-contained changes that train() can switch on.

* `freeze_word_embeddings(model)`: the 30,522 x 384 word-embedding table takes no gradient. That
  removes its dense gradient (zeroed every step), half of the fused AdamW's work and half of the
  gradient norm. It changes the recipe (the table stays as pretrained): `TrainConfig.freeze_embeddings`,
  on by default since `benchmarks/parity.py` showed MCC within seed noise over 3 seeds.
* `cls_only_last_layer(model)`: the last encoder layer computes only the [CLS] position. The
  classification head of BERT-family models reads nothing but that position of the last layer
  (the pooler takes `hidden[:, 0]`), so the other positions' queries, attention outputs and
  feed-forward there are work whose result is thrown away: about 12 % of the encoder's FLOPs for
  a 6-layer model. Keys and values still come from every position. The logits and gradients are
  the same (up to float rounding); only the dropout masks of the skipped positions are not drawn.
  It changes no weight and is not saved: a saved model is the standard one.
* `cheap_dropout(model)`: on a CPU, dropout masks from two 15-bit uniforms per 32-bit draw instead of
  `bernoulli_` (dropout was ~11 % of a step on the AMD EPYC; see `dropout_noise`).
* `cpu_attention(model)`: on a CPU, the training model's attention (its steps' and its validation passes') in
  the compute dtype (bf16 under autocast), its dropout masks as cheap as the others. torch's SDPA takes its
  math path on a CPU whenever attention dropout is on, in fp32, its mask drawn with `bernoulli_`. The
  arithmetic is transformers' own eager attention (bf16 matmuls, softmax in fp32): 1.035x a step on the AMD EPYC
  (benchmarks/ab_speed.py, variant attn).

* `compile_for_steps(model, backend, ...)`: `--compile BACKEND`, the model the training steps call compiled
  by torch.compile through Accelerate's regional compilation (each repeated encoder layer compiled once, for
  all of them; dynamic shapes), and probed with one forward and backward pass so that a failure shows
  before the first step. Validation and saving keep the eager model: the same parameters.

Tried and not kept (benchmarks/ab_speed.py keeps them for the record, with their A/B numbers):
bf16 weight copies refreshed by the optimizer step instead of autocast's per-forward casts (bitwise
the same losses, not faster: 0.98x); dropout masks from `torch.rand` instead of `bernoulli_` (the mask
is ~1.7x cheaper alone, but the step was not measurably faster: 1.005x, under load).

Nothing here imports torch at module level, so `workbench.core` stays light to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.base.config import TrainConfig


def freeze_word_embeddings(model: Any) -> int:
    """Stop MODEL's word-embedding table from training; return how many parameters it holds.

    Call before the optimizer's parameter groups are built (they skip frozen parameters).
    Position and token-type embeddings, LayerNorms and the encoder still train."""
    table = model.get_input_embeddings().weight
    table.requires_grad_(False)
    table.grad = None
    return int(table.numel())


# Sequence classifiers whose head reads only position 0 of the last layer, with BERT's layer layout
# (attention.self.query/key/value, attention.output, intermediate, output).
CLS_HEAD_CLASSES = (
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "ElectraForSequenceClassification",
)


def cls_only_last_layer(model: Any) -> bool:
    """Make MODEL's last encoder layer compute only the [CLS] position; True when installed.

    A no-op (False) for models whose head may read other positions or whose layers are laid out
    otherwise. The layer's output is then (batch, 1, width): only the head may read it, so this is
    for the training loop's own model object, never for one that explains or embeds sentences."""
    from workbench.core.training.recipe import encoder_layers

    if type(model).__name__ not in CLS_HEAD_CLASSES:
        return False
    try:
        layer = encoder_layers(model)[-1]
        attention = layer.attention
        heads = attention.self.num_attention_heads
        head_size = attention.self.attention_head_size
        parts = (
            attention.self.query,
            attention.self.key,
            attention.self.value,
            attention.output,
            layer.feed_forward_chunk,
        )
    except (AttributeError, IndexError, TypeError, ValueError):
        return False
    if getattr(model.config, "is_decoder", False) or getattr(layer, "add_cross_attention", False) or not all(parts):
        return False
    if attention_helpers() is None or not hasattr(attention.self, "scaling"):
        return False  # an older transformers (before its attention interface): the layer stays as it is
    layer.forward = _cls_only_forward(layer, heads, head_size)
    layer.cls_only = True
    return True


def attention_helpers() -> tuple[Any, Any] | None:
    """transformers' attention interface (ALL_ATTENTION_FUNCTIONS, BERT's eager_attention_forward), or
    None where this transformers is older than it (4.46 to 4.4x)."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.bert.modeling_bert import eager_attention_forward
    except ImportError:
        return None
    return ALL_ATTENTION_FUNCTIONS, eager_attention_forward


def layer_returns_tuple(version: str | None = None) -> bool:
    """Whether an encoder layer of transformers VERSION (default: the installed one) returns a tuple
    (4.x: the encoder reads `[0]`) rather than the hidden states alone (5.x)."""
    if version is None:
        import transformers

        version = transformers.__version__
    return int(version.split(".")[0]) < 5


def _cls_only_forward(layer: Any, heads: int, head_size: int, as_tuple: bool | None = None) -> Any:
    helpers = attention_helpers()
    assert helpers is not None  # cls_only_last_layer checked
    ALL_ATTENTION_FUNCTIONS, eager_attention_forward = helpers  # noqa: N806 (transformers' names)
    as_tuple = layer_returns_tuple() if as_tuple is None else as_tuple

    attention = layer.attention
    self_attention = attention.self

    def forward(hidden_states: Any, attention_mask: Any = None, *args: Any, **kwargs: Any) -> Any:
        batch, length, _ = hidden_states.shape
        cls = hidden_states[:, :1]
        query = self_attention.query(cls).view(batch, 1, heads, head_size).transpose(1, 2)
        key = self_attention.key(hidden_states).view(batch, length, heads, head_size).transpose(1, 2)
        value = self_attention.value(hidden_states).view(batch, length, heads, head_size).transpose(1, 2)
        if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[-2] > 1:
            attention_mask = attention_mask[:, :, :1]  # the [CLS] query's row of the mask
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self_attention.config._attn_implementation, eager_attention_forward
        )
        context, _ = interface(
            self_attention,
            query,
            key,
            value,
            attention_mask,
            dropout=self_attention.dropout.p if self_attention.training else 0.0,
            scaling=self_attention.scaling,
        )
        attended = attention.output(context.reshape(batch, 1, -1), cls)
        output = layer.feed_forward_chunk(attended)
        return (output,) if as_tuple else output

    return forward


def dropout_noise(x: Any, p: float) -> Any:
    """Inverted-dropout noise for X on a CPU: 0 with probability P, else 1 / (1 - P), in X's dtype.

    torch's CPU dropout draws its mask with `bernoulli_`, about 1 ms for a 32 x 13 x 384 batch of
    activations on this project's machines; here one 32-bit draw of the generator gives two 15-bit
    uniforms (bits 0-14 and 15-29 of `random_()`'s 31 uniform bits), compared with P: about 0.4 ms.
    P is resolved to 1/32,768 (0.1 drops 0.100006 of the elements). The generator is torch's default
    one, so seeding and checkpointed random state work as before."""
    import torch

    n = x.numel()
    half = (n + 1) // 2
    bits = torch.empty(half, dtype=torch.int32, device=x.device).random_()
    threshold = round(p * 32768)
    keep = torch.empty(2 * half, dtype=torch.bool, device=x.device)
    torch.ge(bits & 0x7FFF, threshold, out=keep[:half])
    torch.ge((bits >> 15) & 0x7FFF, threshold, out=keep[half:])
    return keep[:n].view(x.shape).to(x.dtype).mul_(1.0 / (1.0 - p))


def cheap_dropout(model: Any) -> int:
    """Give every nn.Dropout in MODEL the cheaper CPU mask (`dropout_noise`); return how many.

    The modules keep their `p` (attention reads it for its own dropout inside SDPA, which is not
    an nn.Dropout call and stays as torch draws it). For a model that trains on a CPU only."""
    import torch

    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Dropout:
            module.forward = _cheap_dropout_forward(module)  # type: ignore[method-assign]
            count += 1
    return count


def _cheap_dropout_forward(module: Any) -> Any:
    def forward(x: Any) -> Any:
        p = module.p
        if not module.training or p == 0.0:
            return x
        if p == 1.0:
            return x * 0.0
        return x * dropout_noise(x, p)

    return forward


CPU_ATTENTION = "workbench_cpu"  # the name `cpu_attention` registers with transformers' attention interface


def cpu_attention(model: Any) -> bool:
    """Make MODEL's self-attention `attention_in_compute_dtype`, registered with transformers' attention
    interface under CPU_ATTENTION; True when set. A no-op (False) for models outside the BERT family
    (CLS_HEAD_CLASSES) and where transformers has no attention interface or mask interface (before 5.x).

    For the training loop's own model object: the saved config does not record the implementation, so a
    saved model loads with transformers' default attention."""
    helpers = attention_helpers()
    if type(model).__name__ not in CLS_HEAD_CLASSES or helpers is None or not hasattr(model, "set_attn_implementation"):
        return False
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
    except ImportError:
        return False
    ALL_ATTENTION_FUNCTIONS = helpers[0]  # noqa: N806 (transformers' name)
    ALL_ATTENTION_FUNCTIONS.register(CPU_ATTENTION, attention_in_compute_dtype)
    ALL_MASK_ATTENTION_FUNCTIONS.register(CPU_ATTENTION, eager_mask)  # additive float masks, as eager's
    try:
        model.set_attn_implementation(CPU_ATTENTION)
    except (ValueError, TypeError):
        return False
    return bool(model.config._attn_implementation == CPU_ATTENTION)  # (it may decline with a warning only)


def attention_in_compute_dtype(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' eager attention (scores, additive mask, softmax in fp32, dropout, weighted values) in the
    dtype of QUERY, KEY and VALUE, its dropout masks from `dropout_noise`; (output, None): no attention weights.
    A boolean mask (True: attend) is taken as well as an additive one."""
    import torch

    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    if dropout and module.training:
        weights = weights * dropout_noise(weights, dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def less_work_per_step(model: Any, config: TrainConfig, device_type: str) -> list[str]:
    """The levers above that train() takes for MODEL (its own training object, before its optimizer's
    groups are built) under CONFIG on a DEVICE_TYPE ("cpu", "cuda"); what was taken, in words (the run's log)."""
    taken = []
    if config.freeze_embeddings:
        freeze_word_embeddings(model)  # the table gets no gradient and no AdamW state
        taken.append("word-embedding table frozen")
    if cls_only_last_layer(model):  # the head reads only [CLS] of the last layer: skip the rest there (exact)
        taken.append("last layer at [CLS] only")
    if device_type == "cpu" and config.compile == "off":  # a compiled step fuses its own masks and attention
        if cheap_dropout(model):  # CPU dropout masks without bernoulli_
            taken.append("CPU dropout masks")
        if cpu_attention(model):  # attention in bf16 with the same masks, not SDPA's fp32 math path
            taken.append("CPU attention")
    return taken


def step_text(mixed_precision: str, optimizer: Any, levers: list[str]) -> str:
    """The run's log line on how its training step runs: Accelerate's MIXED_PRECISION ("no", "bf16", "fp16"),
    OPTIMIZER's kernel (fused or foreach) and the LEVERS `less_work_per_step` took."""
    from workbench.core.base.events import TRAINING_STEP

    precision = "fp32" if mixed_precision == "no" else f"{mixed_precision} autocast"
    defaults = getattr(getattr(optimizer, "optimizer", optimizer), "defaults", {})
    kernel = "fused AdamW" if defaults.get("fused") else "foreach AdamW" if defaults.get("foreach") else "AdamW"
    return f"{TRAINING_STEP} {', '.join([precision, kernel, *levers])}"


def compile_for_steps(
    model: Any, backend: str, batch: Any, accelerator: Any, log: Callable[[str], None], levers: list[str] | None = None
) -> Any:
    """MODEL compiled with torch.compile on BACKEND for the training steps, or MODEL itself when the compile
    fails (with `cheap_dropout` and `cpu_attention` on a CPU, as an eager training has them, added to LEVERS; a
    compile that works adds "compiled (BACKEND)"). One forward and backward pass on
    BATCH (training rows, collated) makes the compiler do its work now, its wait said in LOG before and
    after; the pass's gradients are dropped and the random state restored, so the steps draw what they
    would have drawn. With several processes the pass makes no collective of its gradients (no_sync), and
    all of them fall back when any one's compile failed.

    torch._dynamo's caches are reset first: compiles of an earlier training in this process are of no use
    to this model, and would count towards torch's recompile limit."""
    import contextlib
    import time

    import torch
    from accelerate.utils import compile_regions

    from workbench.core.base.events import COMPILE_FAILED, COMPILED, COMPILING
    from workbench.core.training.checkpoint import rng_state, set_rng_state

    log(
        f"{COMPILING} (torch.compile, {backend}, each repeated layer compiled once): on a machine without this "
        "model in torch's compile cache, this takes minutes"
    )
    levers = [] if levers is None else levers
    started, state = time.perf_counter(), rng_state()
    unwrapped = accelerator.unwrap_model(model)  # under DDP: the model inside the wrapper
    batch.pop("row", None)
    model.train()  # compiled for the steps' mode (guards on it: eval would compile again)
    failure = ""
    try:
        torch._dynamo.reset()
        compiled = compile_regions(model, backend=backend, dynamic=True)
        with getattr(model, "no_sync", contextlib.nullcontext)():  # DDP: no gradient all-reduce for the probe
            accelerator.backward(compiled(**batch.to(accelerator.device)).loss)
    except Exception as err:  # the compiler's failures are of many kinds; every one means eager
        failure = compiler_error(err)
    finally:
        model.zero_grad(set_to_none=True)
        set_rng_state(state)
    if accelerator.num_processes > 1:  # every process trains the same way, or their collectives would not pair
        failed = accelerator.reduce(torch.tensor([float(bool(failure))], device=accelerator.device), "sum")
        if failed.item() and not failure:
            failure = f"failed in {int(failed.item())} other process(es)"
    if failure:
        log(f"{COMPILE_FAILED} ({failure}): training without it")
        if accelerator.device.type == "cpu":  # the same steps as without --compile
            taken = [("CPU dropout masks", cheap_dropout(model)), ("CPU attention", cpu_attention(unwrapped))]
            levers.extend(name for name, on in taken if on)
        return model
    log(f"{COMPILED} {time.perf_counter() - started:.1f} s")
    levers.append(f"compiled ({backend})")
    return compiled


def compiler_error(err: BaseException) -> str:
    """ "Type: first line" of the error under ERR's wrappers (torch's BackendCompilerFailed wraps the compiler's
    own as inner_exception or __cause__)."""
    cause, seen = err, {id(err)}
    while True:
        inner = getattr(cause, "inner_exception", None) or cause.__cause__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            break
        cause = inner
        seen.add(id(inner))
    reason = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {reason[0] if reason else ''}"


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
