"""Predicting acceptability of single sentences with a trained (or untrained) model."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.base.config import LABELS, PRECISIONS
from workbench.core.base.hardware import bf16_autocast
from workbench.core.model.loading import by_token_count, is_finetuned, load_model, load_tokenizer, resolve_model

PREDICT_BATCH = 64  # sentences per forward pass of predict_many


class InputError(ValueError):
    """A sentence that cannot be classified (empty, only whitespace or control characters)."""


@dataclass
class Prediction:
    sentence: str
    label: str
    probabilities: dict[str, float]
    logits: list[float]
    tokens: int
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "label": self.label,
            "probabilities": self.probabilities,
            "logits": self.logits,
            "tokens": self.tokens,
            "truncated": self.truncated,
        }


def clean_sentence(text: str) -> str:
    """Drop control characters (NUL included) and surrounding whitespace; refuse what is left empty.

    Lone surrogates (undecodable bytes in command-line arguments) become U+FFFD: the tokenizer and
    the terminal refuse them."""
    categories = [(ch, unicodedata.category(ch)) for ch in text]
    cleaned = "".join("\ufffd" if kind == "Cs" else ch for ch, kind in categories if ch in "\t\n" or kind != "Cc")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise InputError("empty sentence: type some words")
    return cleaned


class Predictor:
    """A model and its tokenizer, ready to classify sentences on CPU or GPU."""

    def __init__(
        self, model: Any, tokenizer: Any, max_length: int = 128, trained: bool = True, precision: str = "fp32"
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        # never more tokens than the model has positions for (longer input is truncated and flagged)
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self.max_length = min(max_length, positions) if isinstance(positions, int) and positions > 0 else max_length
        self.trained = trained
        # "fp32" (the default: the probabilities transformers.pipeline() gives), or "bf16" / "auto": the
        # forward under bf16 autocast (auto: where the CPU or GPU multiplies bf16 natively). On the 2-core AMD
        # EPYC, 1,000 dev sentences of a 1-epoch run took 0.76 s instead of 2.0 s, p(acceptable) within 4e-3 of fp32's
        # (benchmarks/results/batching_trained_amd.txt).
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
        self.precision = precision

    @classmethod
    def load(
        cls,
        source: str | Path,
        max_length: int = 128,
        allow_pickle: bool = False,
        device: str | None = None,
        precision: str = "fp32",
    ) -> Predictor:
        """From a run folder (its best model), a saved model folder or a model name, on DEVICE
        (default: the GPU when there is one, else the CPU).

        A bare encoder (not fine-tuned) is marked untrained; pickle weights load only with ALLOW_PICKLE."""
        from workbench.core.base.hardware import default_device

        name = str(source)
        trained = is_finetuned(Path(resolve_model(name)))
        model = load_model(name, allow_pickle=allow_pickle).to(device or default_device())
        return cls(model, load_tokenizer(name), max_length=max_length, trained=trained, precision=precision)

    def predict(self, sentences: list[str]) -> list[Prediction]:
        import torch

        cleaned = [clean_sentence(s) for s in sentences]
        full_lengths = [len(ids) for ids in self.tokenizer(cleaned, truncation=False)["input_ids"]]
        batch = self.tokenizer(cleaned, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        device = next(self.model.parameters()).device
        with torch.inference_mode(), bf16_autocast(self.model, device, self.precision):
            logits = self.model(**batch.to(device)).logits.float().cpu()
        probs = torch.softmax(logits, dim=-1)
        results = []
        for i, sentence in enumerate(cleaned):
            p = probs[i].tolist()
            results.append(
                Prediction(
                    sentence=sentence,
                    label=LABELS[int(probs[i].argmax())],
                    probabilities={LABELS[k]: p[k] for k in range(len(LABELS))},
                    logits=logits[i].tolist(),
                    tokens=min(full_lengths[i], self.max_length),
                    truncated=full_lengths[i] > self.max_length,
                )
            )
        return results

    def predict_one(self, sentence: str) -> Prediction:
        return self.predict([sentence])[0]

    def predict_many(self, sentences: list[str], batch_size: int = PREDICT_BATCH) -> list[Prediction | InputError]:
        """Every sentence's prediction in SENTENCES' order, scored in batches of BATCH_SIZE sentences of
        similar length (little padding); an InputError in place of a sentence that cannot be classified."""
        results: list[Prediction | InputError | None] = [None] * len(sentences)
        valid: list[tuple[int, str]] = []
        for number, sentence in enumerate(sentences):
            try:
                valid.append((number, clean_sentence(sentence)))
            except InputError as err:
                results[number] = err
        valid = [valid[i] for i in by_token_count(self.tokenizer, [s for _, s in valid], self.max_length)]
        for start in range(0, len(valid), max(1, batch_size)):
            chunk = valid[start : start + max(1, batch_size)]
            for (number, _), prediction in zip(chunk, self.predict([s for _, s in chunk]), strict=True):
                results[number] = prediction
        return [r for r in results if r is not None]
