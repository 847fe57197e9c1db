"""Why the model says what it says: token attributions (Captum) and minimal pairs.

Importing this module is cheap: torch and Captum load inside the functions.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from workbench.core.base.config import LABELS
from workbench.core.model.predict import InputError, Predictor, clean_sentence

ACCEPTABLE = LABELS.index("acceptable")
UNACCEPTABLE = LABELS.index("unacceptable")
METHOD_IG = "layer_integrated_gradients"  # IG on the word-embedding layer's output (what Captum's LayerIG does)
METHOD_OCCLUSION = "occlusion"

# Integration baselines: what every word of the sentence is replaced by at the start of the path
# ([CLS] and [SEP] stay). Measured on the holdout (benchmarks/attribution_baselines.py, results in
# benchmarks/results/attribution_baselines_*.txt): see DEFAULT_BASELINE.
BASELINE_PAD = "pad"  # [PAD] tokens (the issue saw 98.5% acceptable by itself on an 8-epoch run)
BASELINE_MASK = "mask"  # [MASK] tokens
BASELINE_UNK = "unk"  # [UNK] tokens
BASELINE_ZERO = "zero"  # zero word embeddings (position and type embeddings still added by the model)
BASELINE_MEAN = "mean"  # the mean of the word-embedding table at every word
BASELINES = (BASELINE_PAD, BASELINE_MASK, BASELINE_UNK, BASELINE_ZERO, BASELINE_MEAN)
# [PAD]: on the 2-epoch run measured (weak: holdout MCC -0.02) every baseline sat at p 0.47-0.56 and every
# one converged at 16 steps (share explained 0.99-1.00); [PAD] had the largest change to explain and was the
# most faithful by ERASER (comprehensiveness AOPC 0.034 vs 0.019 for [MASK], sufficiency -0.003 vs 0.009).
# The 15% was a convergence failure (δ -0.82 at 16 steps), which the adaptive steps and the warning
# now catch. To re-measure on a stronger run: benchmarks/attribution_baselines.py, faithfulness.py.
DEFAULT_BASELINE = BASELINE_PAD

# Integration steps (Gauss-Legendre), all of a sentence's in one batched forward and backward. The
# default is adaptive: DEFAULT_STEPS first, then each later count in STEP_SCHEDULE for the sentences
# whose convergence error is still large (see converged()); a fixed count turns that off.
DEFAULT_STEPS = 16
STEP_SCHEDULE = (16, 64)
# The convergence error is "large" beyond this share of the change it should add up to (plus an
# absolute floor, for sentences the model scores about as it scores the baseline).
CONVERGENCE_SHARE = 0.05
CONVERGENCE_FLOOR = 0.02
# Sentences x steps in one forward/backward of a batch. Measured on the 2-core AMD EPYC (16 dev sentences,
# 16 steps each, benchmarks/results/explain_rows_amd.txt): 64 rows 1.05 s, 16 rows 1.13 s, 128 rows 1.2 s,
# 256 rows 1.9 s; the activations of 256 rows no longer fit the caches there.
ROWS_PER_PASS = 64


@dataclass
class Explanation:
    """Per-token attributions of one sentence.

    `attributions[i]` is token i's share of the model's log-odds of `acceptable`
    (logit[acceptable] - logit[unacceptable]) relative to the baseline sentence:
    positive pushes toward acceptable, negative toward unacceptable. By completeness,
    sum(attributions) = log_odds - baseline_log_odds + delta (delta: the integral's error)."""

    sentence: str
    tokens: list[str]
    attributions: list[float]
    probabilities: dict[str, float]
    label: str
    method: str
    delta: float | None  # convergence error: sum(attributions) - (log_odds - baseline_log_odds); None for occlusion
    truncated: bool = False
    log_odds: float = 0.0  # logit[acceptable] - logit[unacceptable] of the sentence
    baseline_log_odds: float = 0.0  # the same for the baseline input
    baseline: str = DEFAULT_BASELINE
    n_steps: int = 0  # integration steps used (0 for occlusion)

    @property
    def attribution_sum(self) -> float:
        return float(sum(self.attributions))

    @property
    def change(self) -> float:
        """What the attributions should add up to: the sentence's log-odds minus the baseline's."""
        return self.log_odds - self.baseline_log_odds

    @property
    def explained_share(self) -> float | None:
        """sum(attributions) / change (1.0 when they account for all of it); None when there is no change."""
        return self.attribution_sum / self.change if abs(self.change) > 1e-6 else None

    @property
    def converged(self) -> bool:
        """Whether the convergence error is small against the change (always True for occlusion)."""
        return self.delta is None or converged(self.delta, self.change)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "tokens": self.tokens,
            "attributions": self.attributions,
            "probabilities": self.probabilities,
            "label": self.label,
            "method": self.method,
            "delta": self.delta,
            "truncated": self.truncated,
            "log_odds": self.log_odds,
            "baseline_log_odds": self.baseline_log_odds,
            "baseline": self.baseline,
            "n_steps": self.n_steps,
            "attribution_sum": self.attribution_sum,
            "explained_share": self.explained_share,
            "converged": self.converged,
        }


def converged(delta: float, change: float) -> bool:
    return abs(delta) <= CONVERGENCE_SHARE * abs(change) + CONVERGENCE_FLOOR


BASELINE_NAMES = {
    BASELINE_PAD: "[PAD]",
    BASELINE_MASK: "[MASK]",
    BASELINE_UNK: "[UNK]",
    BASELINE_ZERO: "zero embeddings",
    BASELINE_MEAN: "mean embedding",
}


def completeness(explanation: Explanation) -> str:
    """One line saying how much the attributions explain: the sentence's log-odds, the baseline's, their
    sum and its share of the change (CLI and TUI alike); at most 80 columns."""
    e = explanation
    share = e.explained_share
    # a share of a change within the convergence floor says nothing
    shared = f" = {share:.0%} of it" if share is not None and abs(e.change) >= CONVERGENCE_FLOOR else ""
    return (
        f"log-odds {e.log_odds:+.2f}, baseline {e.baseline_log_odds:+.2f}: change {e.change:+.2f};"
        f" sum {e.attribution_sum:+.2f}{shared}"
    )


def convergence_warning(explanation: Explanation) -> str:
    """A warning when the integral's error is large against the change; "" when it is not."""
    e = explanation
    if e.converged or e.delta is None:
        return ""
    return (
        f"convergence error {e.delta:+.2f} is large against the change {e.change:+.2f} "
        f"({e.n_steps} steps): the shares are unreliable"
    )


def describe_method(explanation: Explanation) -> str:
    """The method in a few words: "IG from [MASK], 16 steps, δ +0.012" or "occlusion by [PAD]". The
    convergence error δ is in log-odds, to the 3 decimals the log-odds are judged by: below them it is
    float noise that differs from one CPU to another (+3.6e-09 on one, +1.2e-10 on the other)."""
    e = explanation
    if e.method != METHOD_IG:
        return f"{e.method} by [PAD]"
    delta = f", δ {round(e.delta, 3) + 0.0:+.3f}" if e.delta is not None else ""  # + 0.0: no "-0.000"
    return f"IG from {BASELINE_NAMES.get(e.baseline, e.baseline)}, {e.n_steps} steps{delta}"


def model_positions(model: Any, max_length: int) -> int:
    """MAX_LENGTH, or fewer when the model has fewer position embeddings."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return min(max_length, positions) if isinstance(positions, int) and positions > 0 else max_length


def hookable_embeddings(model: Any) -> Any | None:
    """The model's input (word) embedding layer, or None where it has none Captum can use: no layer,
    or a forward that takes no `inputs_embeds` to feed its output back in."""
    import inspect

    import torch

    try:
        layer = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if not isinstance(layer, torch.nn.Module):
        return None
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    return layer if "inputs_embeds" in parameters else None


def _encode(tokenizer: Any, sentence: str, max_length: int) -> tuple[list[int], bool]:
    ids = tokenizer(sentence, truncation=False)["input_ids"]
    if len(ids) <= max_length:
        return ids, False
    return tokenizer(sentence, truncation=True, max_length=max_length)["input_ids"], True


def _check_known_words(tokenizer: Any, ids: list[int]) -> None:
    """Refuse a sentence with no token but special and unknown ones (emoji only, say): nothing to explain."""
    special = set(tokenizer.all_special_ids)
    unknown = tokenizer.unk_token_id
    words = [i for i in ids if i not in special or i == unknown]
    if not words:
        raise InputError("nothing to explain: the tokenizer finds no word in it (invisible characters only?)")
    if unknown is not None and all(i == unknown for i in words):
        raise InputError(
            f"no word the model knows: every token is {tokenizer.unk_token} "
            "(emoji or characters outside its vocabulary)"
        )


def _kept_ids(tokenizer: Any) -> set[int]:
    """Token ids a baseline keeps as they are: [CLS], [SEP], [PAD] (not [UNK]: a word the model does not know)."""
    return set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}


def baseline_token_id(tokenizer: Any, baseline: str) -> int:
    """The token a token baseline puts in place of every word."""
    token_id = {
        BASELINE_PAD: tokenizer.pad_token_id,
        BASELINE_MASK: tokenizer.mask_token_id,
        BASELINE_UNK: tokenizer.unk_token_id,
    }.get(baseline)
    if token_id is None:
        raise ValueError(f"baseline {baseline!r}: the tokenizer has no such token (or it is not a token baseline)")
    return int(token_id)


def baseline_ids(tokenizer: Any, ids: list[int], baseline: str = BASELINE_PAD) -> list[int]:
    """Special tokens kept ([CLS], [SEP]), every other token replaced by the baseline's token."""
    kept = _kept_ids(tokenizer)
    replacement = baseline_token_id(tokenizer, baseline)
    return [i if i in kept else replacement for i in ids]


def baseline_embeddings(layer: Any, tokenizer: Any, input_ids: Any, baseline: str) -> Any:
    """The word embeddings of the baseline input for INPUT_IDS (batch x length): the kept tokens'
    own embeddings, and at every word the baseline's token's embedding, zeros or the table's mean."""
    import torch

    embeds = layer(input_ids)
    kept = torch.zeros_like(input_ids, dtype=torch.bool)
    for token_id in _kept_ids(tokenizer):
        kept |= input_ids == token_id
    if baseline in (BASELINE_PAD, BASELINE_MASK, BASELINE_UNK):
        fill = layer(torch.tensor([baseline_token_id(tokenizer, baseline)], device=input_ids.device))[0]
    elif baseline == BASELINE_ZERO:
        fill = torch.zeros(embeds.shape[-1], dtype=embeds.dtype, device=embeds.device)
    elif baseline == BASELINE_MEAN:
        fill = layer.weight.mean(dim=0).to(embeds.dtype)
    else:
        raise ValueError(f"unknown baseline {baseline!r}: one of {', '.join(BASELINES)}")
    return torch.where(kept.unsqueeze(-1), embeds, fill.expand_as(embeds)).detach()


def explain(
    model: Any,
    tokenizer: Any,
    sentence: str,
    max_length: int = 128,
    n_steps: int | None = None,
    baseline: str = DEFAULT_BASELINE,
) -> Explanation:
    """Token attributions of SENTENCE toward `acceptable` (see explain_many).

    Raises InputError for an empty sentence or one of unknown tokens only."""
    result = explain_many(model, tokenizer, [sentence], max_length, n_steps, baseline)[0]
    if isinstance(result, InputError):
        raise result
    return result


def explain_many(
    model: Any,
    tokenizer: Any,
    sentences: list[str],
    max_length: int = 128,
    n_steps: int | None = None,
    baseline: str = DEFAULT_BASELINE,
    rows_per_pass: int = ROWS_PER_PASS,
) -> list[Explanation | InputError]:
    """Token attributions of each of SENTENCES toward `acceptable`, batched (in SENTENCES' order; an
    InputError in place of a sentence that has nothing to explain).

    Attributes the log-odds of acceptable, logit[acceptable] - logit[unacceptable] (what the softmax
    of two labels depends on), with Captum's IntegratedGradients on the output of the word-embedding
    layer (Layer Integrated Gradients), from BASELINE (every word replaced, [CLS] and [SEP] kept; same
    length, same attention mask), summed over the hidden dimension per token. N_STEPS None: adaptive
    (STEP_SCHEDULE: more steps only for sentences whose convergence error is large). Sentences of
    similar length share a batch of at most ROWS_PER_PASS sentences x steps; padding positions equal
    their baseline and get nothing. A model without an embedding layer Captum can use gets Captum's
    Occlusion on input_ids instead (each token replaced by [PAD], one at a time).

    Thread-safe on a shared model (a Predictor may use it meanwhile, another explain() too): no hook;
    the embeddings are computed here and fed to the model as inputs_embeds."""

    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}: one of {', '.join(BASELINES)}")
    length = model_positions(model, max_length)
    results: list[Explanation | InputError | None] = [None] * len(sentences)
    encoded: dict[int, tuple[str, list[int], bool]] = {}
    for number, sentence in enumerate(sentences):
        try:
            cleaned = clean_sentence(sentence)
            ids, truncated = _encode(tokenizer, cleaned, length)
            _check_known_words(tokenizer, ids)
        except InputError as err:
            results[number] = err
            continue
        encoded[number] = (cleaned, ids, truncated)
    model.eval()
    layer = hookable_embeddings(model)
    schedule = STEP_SCHEDULE if n_steps is None else (n_steps,)
    order = sorted(encoded, key=lambda n: len(encoded[n][1]))
    if layer is None:
        for number in order:
            cleaned, ids, truncated = encoded[number]
            results[number] = _occlusion_explanation(model, tokenizer, cleaned, ids, truncated)
        return [r for r in results if r is not None]
    pending = order
    for position, steps in enumerate(schedule):
        last = position == len(schedule) - 1
        per_pass = max(1, rows_per_pass // steps)
        still: list[int] = []
        for start in range(0, len(pending), per_pass):
            chunk = pending[start : start + per_pass]
            explained = _integrated_gradients(model, layer, tokenizer, [encoded[n] for n in chunk], steps, baseline)
            for number, explanation in zip(chunk, explained, strict=True):
                results[number] = explanation
                if not last and not explanation.converged:
                    still.append(number)
        pending = still
        if not pending:
            break
    return [r for r in results if r is not None]


def _log_odds(logits: Any) -> Any:
    return logits[:, ACCEPTABLE] - logits[:, UNACCEPTABLE]


def _integrated_gradients(
    model: Any, layer: Any, tokenizer: Any, batch: list[tuple[str, list[int], bool]], n_steps: int, baseline: str
) -> list[Explanation]:
    """IG of a few encoded sentences in one pass (padded to the longest; padding is masked out)."""
    import torch
    from captum.attr import IntegratedGradients

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(ids) for _, ids, _ in batch)
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for _, ids, _ in batch], device=device)
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for _, ids, _ in batch], device=device)
    with torch.no_grad():  # the model's own forward passes: the probabilities and both log-odds
        inputs = layer(input_ids).detach()
        baselines = baseline_embeddings(layer, tokenizer, input_ids, baseline)
        logits = model(inputs_embeds=torch.cat([inputs, baselines]), attention_mask=torch.cat([mask, mask])).logits
    logits = logits.float()
    rows = len(batch)
    probs = torch.softmax(logits[:rows], dim=-1)
    odds = _log_odds(logits)

    def forward(embeds: Any, attention_mask: Any) -> Any:
        return _log_odds(model(inputs_embeds=embeds, attention_mask=attention_mask).logits.float())

    attributions = IntegratedGradients(forward).attribute(
        inputs=inputs,
        baselines=baselines,
        additional_forward_args=(mask,),
        n_steps=n_steps,
        method="gausslegendre",
        internal_batch_size=rows * n_steps,
    )
    per_token = attributions.sum(dim=-1).detach().float().cpu()
    explanations = []
    for row, (cleaned, ids, truncated) in enumerate(batch):
        values = [float(x) for x in per_token[row, : len(ids)].tolist()]
        p = probs[row].tolist()
        sentence_odds, baseline_odds = float(odds[row]), float(odds[rows + row])
        explanations.append(
            Explanation(
                sentence=cleaned,
                tokens=tokenizer.convert_ids_to_tokens(ids),
                attributions=values,
                probabilities={LABELS[k]: float(p[k]) for k in range(len(LABELS))},
                label=LABELS[int(max(range(len(p)), key=p.__getitem__))],
                method=METHOD_IG,
                delta=sum(values) - (sentence_odds - baseline_odds),
                truncated=truncated,
                log_odds=sentence_odds,
                baseline_log_odds=baseline_odds,
                baseline=baseline,
                n_steps=n_steps,
            )
        )
    return explanations


def _occlusion_explanation(model: Any, tokenizer: Any, cleaned: str, ids: list[int], truncated: bool) -> Explanation:
    """Captum's Occlusion over single tokens by [PAD]; special tokens equal their baseline, so they get 0."""
    import torch
    from captum.attr import Occlusion

    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    baseline = torch.tensor([baseline_ids(tokenizer, ids, BASELINE_PAD)], device=device)
    mask = torch.ones_like(input_ids)

    def forward(input_ids: Any, attention_mask: Any) -> Any:
        return _log_odds(model(input_ids=input_ids, attention_mask=attention_mask).logits.float())

    with torch.inference_mode():
        logits = model(input_ids=torch.cat([input_ids, baseline]), attention_mask=mask.expand(2, -1)).logits.float()
    probs = torch.softmax(logits[0], dim=-1).tolist()
    odds = _log_odds(logits)
    with torch.no_grad():
        attributions = Occlusion(forward).attribute(
            inputs=input_ids,
            sliding_window_shapes=(1,),
            strides=1,
            baselines=baseline,
            additional_forward_args=(mask,),
            perturbations_per_eval=max(1, input_ids.shape[1]),
        )
    return Explanation(
        sentence=cleaned,
        tokens=tokenizer.convert_ids_to_tokens(ids),
        attributions=[float(x) for x in attributions[0].float().cpu().tolist()],
        probabilities={LABELS[k]: float(probs[k]) for k in range(len(LABELS))},
        label=LABELS[int(max(range(len(probs)), key=probs.__getitem__))],
        method=METHOD_OCCLUSION,
        delta=None,
        truncated=truncated,
        log_odds=float(odds[0]),
        baseline_log_odds=float(odds[1]),
        baseline=BASELINE_PAD,
        n_steps=0,
    )


# ---------------------------------------------------------------- minimal pairs

# |p(acceptable | B) - p(acceptable | A)| below this: the model does not separate the two sentences
SEPARATION = 0.10


@dataclass
class PairComparison:
    """Two sentences side by side: their probabilities, the words that differ, and (when asked for)
    both sentences' attributions."""

    a: str
    b: str
    probabilities_a: dict[str, float]
    probabilities_b: dict[str, float]
    label_a: str
    label_b: str
    delta_acceptable: float  # p(acceptable | b) - p(acceptable | a)
    words_a: list[tuple[str, bool]] = field(default_factory=list)  # (word, changed)
    words_b: list[tuple[str, bool]] = field(default_factory=list)
    explanation_a: Explanation | None = None
    explanation_b: Explanation | None = None

    @property
    def separated(self) -> bool:
        """Whether the model tells the two apart: p(acceptable) moves by SEPARATION or more."""
        return abs(self.delta_acceptable) >= SEPARATION

    def verdict(self) -> str:
        """One line: whether the model separates A and B, and which it prefers."""
        change = self.delta_acceptable
        if not self.separated:
            return f"the model does not separate them (|Δp| {abs(change):.3f} < {SEPARATION:.2f})"
        better = "B" if change > 0 else "A"
        flips = ", the label flips" if self.label_a != self.label_b else ", same label"
        return f"the model separates them: {better} more acceptable by {abs(change):.3f}{flips}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "probabilities_a": self.probabilities_a,
            "probabilities_b": self.probabilities_b,
            "label_a": self.label_a,
            "label_b": self.label_b,
            "delta_acceptable": self.delta_acceptable,
            "separated": self.separated,
            "words_a": [[w, c] for w, c in self.words_a],
            "words_b": [[w, c] for w, c in self.words_b],
            "explanation_a": self.explanation_a.to_dict() if self.explanation_a else None,
            "explanation_b": self.explanation_b.to_dict() if self.explanation_b else None,
        }


def differing_words(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Whitespace words of A and B, each marked True where it is not in their longest common matching."""
    words_a, words_b = a.split(), b.split()
    changed_a, changed_b = [True] * len(words_a), [True] * len(words_b)
    matcher = difflib.SequenceMatcher(a=words_a, b=words_b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            changed_a[block.a + k] = False
            changed_b[block.b + k] = False
    return list(zip(words_a, changed_a, strict=True)), list(zip(words_b, changed_b, strict=True))


def minimal_pair(
    model: Any,
    tokenizer: Any,
    a: str,
    b: str,
    max_length: int = 128,
    attributions: bool = False,
    n_steps: int | None = None,
) -> PairComparison:
    """Both sentences' probabilities, the change in p(acceptable) from A to B, the words that differ;
    with ATTRIBUTIONS also both sentences' attributions (one batched explain_many)."""
    first, second = Predictor(model, tokenizer, max_length=max_length).predict([a, b])
    words_a, words_b = differing_words(first.sentence, second.sentence)
    explained: list[Any] = [None, None]
    if attributions:
        explained = [
            e if isinstance(e, Explanation) else None
            for e in explain_many(model, tokenizer, [a, b], max_length, n_steps)
        ]
    return PairComparison(
        a=first.sentence,
        b=second.sentence,
        probabilities_a=first.probabilities,
        probabilities_b=second.probabilities,
        label_a=first.label,
        label_b=second.label,
        delta_acceptable=second.probabilities["acceptable"] - first.probabilities["acceptable"],
        words_a=words_a,
        words_b=words_b,
        explanation_a=explained[0],
        explanation_b=explained[1],
    )
