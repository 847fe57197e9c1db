"""Predicting acceptability of single sentences with a trained (or untrained) model."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.config import LABELS
from workbench.core.model import load_model, load_tokenizer


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
        return {"sentence": self.sentence, "label": self.label, "probabilities": self.probabilities,
                "logits": self.logits, "tokens": self.tokens, "truncated": self.truncated}


def clean_sentence(text: str) -> str:
    """Drop control characters (NUL included) and surrounding whitespace; refuse what is left empty."""
    cleaned = "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch) != "Cc")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise InputError("empty sentence: type some words")
    return cleaned


class Predictor:
    """A model and its tokenizer, ready to classify sentences on CPU or GPU."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 128, trained: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.trained = trained

    @classmethod
    def load(cls, source: str | Path, max_length: int = 128) -> Predictor:
        """From a run folder (its best model), a saved model folder or a model name.

        A bare encoder (not fine-tuned) is marked untrained."""
        source_path = Path(source)
        trained = (source_path / "model").is_dir() or (source_path / "config.json").is_file() and _is_finetuned(
            source_path)
        name = str(source)
        return cls(load_model(name), load_tokenizer(name), max_length=max_length, trained=trained)

    def predict(self, sentences: list[str]) -> list[Prediction]:
        import torch

        cleaned = [clean_sentence(s) for s in sentences]
        full_lengths = [len(ids) for ids in self.tokenizer(cleaned, truncation=False)["input_ids"]]
        batch = self.tokenizer(cleaned, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            logits = self.model(**batch.to(device)).logits.float().cpu()
        probs = torch.softmax(logits, dim=-1)
        results = []
        for i, sentence in enumerate(cleaned):
            p = probs[i].tolist()
            results.append(Prediction(
                sentence=sentence,
                label=LABELS[int(probs[i].argmax())],
                probabilities={LABELS[k]: p[k] for k in range(len(LABELS))},
                logits=logits[i].tolist(),
                tokens=min(full_lengths[i], self.max_length),
                truncated=full_lengths[i] > self.max_length,
            ))
        return results

    def predict_one(self, sentence: str) -> Prediction:
        return self.predict([sentence])[0]


def _is_finetuned(folder: Path) -> bool:
    import json

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    architectures = config.get("architectures") or []
    return any(a.endswith("ForSequenceClassification") for a in architectures)
