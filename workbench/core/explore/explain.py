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
# Integration steps of Layer Integrated Gradients (Gauss-Legendre): all in one batched forward and
# backward. 16 keeps the convergence delta small on the embedded model for CoLA-length sentences
# (hundredths of a logit) while one sentence stays within the 150 ms budget on a 2-core CPU.
DEFAULT_STEPS = 16
METHOD_IG = "layer_integrated_gradients"
METHOD_OCCLUSION = "occlusion"


@dataclass
class Explanation:
    """Per-token attributions of one sentence.

    `attributions[i]` is token i's share of the model's log-odds of `acceptable`
    (logit[acceptable] - logit[unacceptable]) relative to the baseline sentence:
    positive pushes toward acceptable, negative toward unacceptable."""

    sentence: str
    tokens: list[str]
    attributions: list[float]
    probabilities: dict[str, float]
    label: str
    method: str
    delta: float | None  # Captum's convergence delta (IG only); None for occlusion
    truncated: bool = False
    log_odds: float = 0.0  # logit[acceptable] - logit[unacceptable] of the sentence
    baseline_log_odds: float = 0.0  # the same for the baseline ([CLS] [PAD]... [SEP])

    def to_dict(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "tokens": self.tokens, "attributions": self.attributions,
                "probabilities": self.probabilities, "label": self.label, "method": self.method,
                "delta": self.delta, "truncated": self.truncated, "log_odds": self.log_odds,
                "baseline_log_odds": self.baseline_log_odds}


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
        raise InputError(f"no word the model knows: every token is {tokenizer.unk_token} "
                         "(emoji or characters outside its vocabulary)")


def _baseline_ids(tokenizer: Any, ids: list[int]) -> list[int]:
    """Special tokens kept ([CLS], [SEP]), every other token replaced by the pad token."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    return [i if i in special else pad for i in ids]


def explain(model: Any, tokenizer: Any, sentence: str, max_length: int = 128,
            n_steps: int = DEFAULT_STEPS) -> Explanation:
    """Token attributions of SENTENCE toward `acceptable`.

    Attributes the log-odds of acceptable, logit[acceptable] - logit[unacceptable] (what the
    softmax of two labels depends on), with Captum's LayerIntegratedGradients on the input
    embedding layer from the baseline [CLS] [PAD]... [SEP] (same length, same attention mask),
    summed over the hidden dimension per token; all N_STEPS in one batched pass. By completeness,
    sum(attributions) = log_odds - baseline_log_odds - delta. A model without an embedding layer
    Captum can hook gets Captum's Occlusion on input_ids instead (each token replaced by [PAD],
    one at a time: attribution = log-odds with the token minus log-odds without it).

    Thread-safe on a shared model (a Predictor may use it meanwhile, another explain() too): Captum
    hooks a private nn.Identity placed after the embedding layer in this call's own forward function
    (word embeddings -> probe -> model(inputs_embeds=...)), never a module of the model.

    Raises InputError for an empty sentence or one of unknown tokens only."""
    import torch

    cleaned = clean_sentence(sentence)
    length = model_positions(model, max_length)
    ids, truncated = _encode(tokenizer, cleaned, length)
    _check_known_words(tokenizer, ids)
    model.eval()
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    baseline = torch.tensor([_baseline_ids(tokenizer, ids)], device=device)
    mask = torch.ones_like(input_ids)

    def log_odds(input_ids: Any, attention_mask: Any) -> Any:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        return logits[:, ACCEPTABLE] - logits[:, UNACCEPTABLE]

    with torch.inference_mode():
        logits = model(input_ids=torch.cat([input_ids, baseline]), attention_mask=mask.expand(2, -1)).logits.float()
    probs = torch.softmax(logits[0], dim=-1).tolist()
    sentence_odds = float(logits[0, ACCEPTABLE] - logits[0, UNACCEPTABLE])
    baseline_odds = float(logits[1, ACCEPTABLE] - logits[1, UNACCEPTABLE])

    layer = hookable_embeddings(model)
    delta: float | None
    if layer is not None:
        from captum.attr import LayerIntegratedGradients

        probe = torch.nn.Identity()  # this call's own: a hook on the shared layer would reach other threads

        def log_odds_through_probe(input_ids: Any, attention_mask: Any) -> Any:
            logits = model(inputs_embeds=probe(layer(input_ids)), attention_mask=attention_mask).logits.float()
            return logits[:, ACCEPTABLE] - logits[:, UNACCEPTABLE]

        lig = LayerIntegratedGradients(log_odds_through_probe, probe)
        attributions, deltas = lig.attribute(inputs=input_ids, baselines=baseline, additional_forward_args=(mask,),
                                             n_steps=n_steps, internal_batch_size=n_steps,
                                             return_convergence_delta=True)
        per_token = attributions.sum(dim=-1)[0]
        delta, method = float(deltas[0]), METHOD_IG
    else:
        per_token = _occlusion(log_odds, input_ids, baseline, mask)
        delta, method = None, METHOD_OCCLUSION
    return Explanation(
        sentence=cleaned,
        tokens=tokenizer.convert_ids_to_tokens(ids),
        attributions=[float(x) for x in per_token.detach().cpu().tolist()],
        probabilities={LABELS[k]: float(probs[k]) for k in range(len(LABELS))},
        label=LABELS[int(max(range(len(probs)), key=probs.__getitem__))],
        method=method,
        delta=delta,
        truncated=truncated,
        log_odds=sentence_odds,
        baseline_log_odds=baseline_odds,
    )


def _occlusion(forward: Any, input_ids: Any, baseline: Any, mask: Any) -> Any:
    """Captum's Occlusion over single tokens; special tokens equal their baseline, so they get 0."""
    import torch
    from captum.attr import Occlusion

    with torch.no_grad():
        attributions = Occlusion(forward).attribute(
            inputs=input_ids, sliding_window_shapes=(1,), strides=1, baselines=baseline,
            additional_forward_args=(mask,), perturbations_per_eval=max(1, input_ids.shape[1]))
    return attributions[0].float()


# ---------------------------------------------------------------- minimal pairs

@dataclass
class PairComparison:
    """Two sentences side by side: their probabilities and the words that differ."""

    a: str
    b: str
    probabilities_a: dict[str, float]
    probabilities_b: dict[str, float]
    label_a: str
    label_b: str
    delta_acceptable: float  # p(acceptable | b) - p(acceptable | a)
    words_a: list[tuple[str, bool]] = field(default_factory=list)  # (word, changed)
    words_b: list[tuple[str, bool]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "probabilities_a": self.probabilities_a,
                "probabilities_b": self.probabilities_b, "label_a": self.label_a, "label_b": self.label_b,
                "delta_acceptable": self.delta_acceptable,
                "words_a": [[w, c] for w, c in self.words_a], "words_b": [[w, c] for w, c in self.words_b]}


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


def minimal_pair(model: Any, tokenizer: Any, a: str, b: str, max_length: int = 128) -> PairComparison:
    """Both sentences' probabilities, the change in p(acceptable) from A to B, the words that differ."""
    first, second = Predictor(model, tokenizer, max_length=max_length).predict([a, b])
    words_a, words_b = differing_words(first.sentence, second.sentence)
    return PairComparison(
        a=first.sentence, b=second.sentence,
        probabilities_a=first.probabilities, probabilities_b=second.probabilities,
        label_a=first.label, label_b=second.label,
        delta_acceptable=second.probabilities["acceptable"] - first.probabilities["acceptable"],
        words_a=words_a, words_b=words_b,
    )
