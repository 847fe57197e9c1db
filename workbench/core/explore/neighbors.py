"""The training sentences nearest to a sentence, by the model's own sentence representation.

The representation is what the model's classification head reads: the input of its `classifier`
module (for BERT, the pooled [CLS] state after the pooler's dense+tanh; for heads that read the whole
sequence, such as RoBERTa's, its [CLS] position). A model without a `classifier` module gets the
mean of its last hidden states over real tokens. Similarity is cosine. The index embeds the
training sentences once, in batches; a query is one forward pass and one matrix product.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.model.predict import clean_sentence

CLASSIFIER_INPUT = "classifier_input"
MEAN_LAST_HIDDEN = "mean_last_hidden"


@dataclass
class Neighbor:
    sentence: str
    label: int
    source: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def representation_kind(model: Any) -> str:
    """The mean of the model's last hidden states: fine-tuning collapses the classifier's own input (BERT's
    tanh pooler) onto about one point per label, where every same-label sentence is the nearest (measured:
    cosine 0.999 for the 5 nearest of any holdout sentence on the 8-epoch default run, centred or not)."""
    return MEAN_LAST_HIDDEN


def embed(model: Any, tokenizer: Any, sentences: list[str], max_length: int = 128,
          batch_size: int = 64, normalize: bool = True) -> np.ndarray:
    """One vector per sentence (float32, rows in SENTENCES' order; unit length with NORMALIZE), batched by length."""
    import threading

    import torch

    model.eval()
    device = next(model.parameters()).device
    kind = representation_kind(model)
    me = threading.get_ident()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    captured: list[Any] = []
    hook = None
    if kind == CLASSIFIER_INPUT:
        # the model may be predicting in another thread meanwhile: keep only this thread's inputs
        hook = model.classifier.register_forward_pre_hook(
            lambda module, args: captured.append(args[0]) if threading.get_ident() == me else None)
    chunks: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = [sentences[i] for i in order[start:start + batch_size]]
                batch = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                                  return_tensors="pt").to(device)
                captured.clear()
                if kind == CLASSIFIER_INPUT:
                    model(**batch)
                    vectors = captured[0]
                    if vectors.dim() == 3:  # a head that reads the sequence: its [CLS] position
                        vectors = vectors[:, 0]
                else:
                    hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                vectors = vectors.float()
                chunks.append((torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors).cpu().numpy())
    finally:
        if hook is not None:
            hook.remove()
    width = chunks[0].shape[1] if chunks else 0
    out = np.zeros((len(sentences), width), dtype=np.float32)
    if chunks:
        out[order] = np.concatenate(chunks)
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def fingerprint(sentences: list[str], model_key: str = "") -> str:
    """A digest of the training sentences and a key naming the model's weights (for the cache)."""
    digest = hashlib.sha256(model_key.encode("utf-8"))
    for sentence in sentences:
        digest.update(sentence.encode("utf-8", errors="replace") + b"\0")
    return digest.hexdigest()


class NeighborIndex:
    """Unit vectors of a training frame's sentences by one model; query() gives the top k by cosine."""

    def __init__(self, frame: pd.DataFrame, vectors: np.ndarray, kind: str, max_length: int = 128,
                 center: np.ndarray | None = None):
        if len(frame) != len(vectors):
            raise ValueError(f"{len(frame)} sentences but {len(vectors)} vectors")
        self.frame = frame.reset_index(drop=True)
        self.vectors = vectors  # unit length, after subtracting CENTER
        # The mean training vector. A fine-tuned head's input (BERT's tanh pooler) puts every
        # sentence in one narrow cone, where raw cosines are all ~1.0; centred, they spread out.
        self.center = center if center is not None else np.zeros(vectors.shape[1:], dtype=np.float32)
        self.kind = kind
        self.max_length = max_length

    @classmethod
    def build(cls, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int = 128, batch_size: int = 64,
              cache: Path | None = None, model_key: str = "") -> NeighborIndex:
        """Embed FRAME's sentences. With CACHE (a .npz file), reuse vectors saved there for the same
        sentences and MODEL_KEY (say, the weights file's path, size and mtime), else save them there."""
        sentences = frame["sentence"].astype(str).tolist()
        key = fingerprint(sentences, f"{model_key}|{representation_kind(model)}|{max_length}|centred")
        if cache is not None and cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as saved:
                    if str(saved["fingerprint"]) == key:
                        return cls(frame, saved["vectors"], str(saved["kind"]), max_length, saved["center"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged or older cache: rebuild it
        raw = embed(model, tokenizer, sentences, max_length, batch_size, normalize=False)
        center = raw.mean(axis=0) if len(raw) else np.zeros(raw.shape[1:], dtype=np.float32)
        vectors = _unit(raw - center)
        index = cls(frame, vectors, representation_kind(model), max_length, center)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                partial = cache.with_name(cache.name + ".partial.npz")
                np.savez(partial, vectors=vectors, fingerprint=np.array(key), kind=np.array(index.kind),
                         center=center)
                partial.replace(cache)
            except OSError:
                pass  # a read-only run folder: the index works, it is only not kept
        return index

    def query(self, model: Any, tokenizer: Any, sentence: str, k: int = 5) -> list[Neighbor]:
        """The K training sentences most similar to SENTENCE, the most similar first."""
        raw = embed(model, tokenizer, [clean_sentence(sentence)], self.max_length, normalize=False)
        return self.nearest(_unit(raw - self.center)[0], k)

    def nearest(self, vector: np.ndarray, k: int = 5) -> list[Neighbor]:
        if len(self.vectors) == 0 or k < 1:
            return []
        scores = self.vectors @ vector
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        sources = self.frame["source"] if "source" in self.frame else pd.Series([""] * len(self.frame))
        return [Neighbor(sentence=str(self.frame["sentence"].iloc[i]), label=int(self.frame["label"].iloc[i]),
                         source=str(sources.iloc[i]), similarity=float(scores[i])) for i in top]


# ---------------------------------------------------------------- a run's index (CLI and TUI alike)

INDEX_FILE = "neighbors-train.npz"


def training_frame(model_dir: Path) -> pd.DataFrame:
    """The sentences the run at MODEL_DIR was trained on: its data and split (core `load_run_data`) and
    its train_limit (the bundled CoLA train split for a plain saved model)."""
    from workbench.core.base.config import TrainConfig
    from workbench.core.base.layout import CONFIG_FILE, MODEL_DIR, RunError, run_of_model
    from workbench.core.runs.lookup import load_run_data

    run_dir = run_of_model(model_dir)
    if run_dir is None and model_dir.name == MODEL_DIR and not (model_dir.parent / CONFIG_FILE).is_file():
        raise RunError(f"{model_dir.parent}: no config.json beside its model/, so the sentences it was trained on are "
                       "unknown; copy the run's config.json back")
    frame = load_run_data(run_dir)["train"]
    limit = TrainConfig.load(run_dir / CONFIG_FILE).train_limit if run_dir else 0
    return frame.iloc[:limit] if limit else frame


def run_index(model: Any, tokenizer: Any, model_dir: Path, max_length: int = 128) -> NeighborIndex:
    """The index of MODEL_DIR's training sentences by its model (loaded from MODEL_DIR); a run folder
    keeps it beside the model (neighbors-train.npz), keyed by the model's version (core `model_version`:
    its weight files' sizes and modification times)."""
    from workbench.core.base.layout import run_of_model
    from workbench.core.model.loading import model_version

    run_dir = run_of_model(model_dir)
    cache = run_dir / INDEX_FILE if run_dir is not None else None
    return NeighborIndex.build(model, tokenizer, training_frame(model_dir), max_length=max_length, cache=cache,
                               model_key=model_version(model_dir))
