"""The training sentences nearest to a sentence, by the model's own sentence representation.

The representation is what the model's classification head reads: the input of its `classifier`
module (for BERT, the pooled [CLS] state after the pooler's dense+tanh; for heads that read the whole
sequence, such as RoBERTa's, its [CLS] position). A model without a `classifier` module gets the
mean of its last hidden states over real tokens. Similarity is cosine. The index embeds the
training sentences once, in batches; a query is one forward pass and one matrix product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.model.predict import clean_sentence
from workbench.core.model.sentence_vectors import (  # noqa: F401 (the index's pieces, re-exported)
    CLASSIFIER_INPUT,
    INDEX_FILE,
    INDEX_MAX_LENGTH,
    MEAN_LAST_HIDDEN,
    centred_vectors,
    embed,
    fingerprint,
    index_key,
    load_index_file,
    representation_kind,
    save_index_file,
    unit,
)


@dataclass
class Neighbor:
    sentence: str
    label: int
    source: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NeighborIndex:
    """Unit vectors of a training frame's sentences by one model; query() gives the top k by cosine."""

    def __init__(
        self,
        frame: pd.DataFrame,
        vectors: np.ndarray,
        kind: str,
        max_length: int = 128,
        center: np.ndarray | None = None,
    ):
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
    def build(
        cls,
        model: Any,
        tokenizer: Any,
        frame: pd.DataFrame,
        max_length: int = 128,
        batch_size: int = 64,
        cache: Path | None = None,
        model_key: str = "",
    ) -> NeighborIndex:
        """Embed FRAME's sentences. With CACHE (a .npz file), reuse vectors saved there for the same
        sentences and MODEL_KEY (say, the weights file's path, size and mtime), else save them there."""
        sentences = frame["sentence"].astype(str).tolist()
        key = index_key(sentences, model_key, representation_kind(model), max_length)
        if cache is not None:
            saved = load_index_file(cache, key)
            if saved is not None:
                vectors, kind, center = saved
                return cls(frame, vectors, kind, max_length, center)
        vectors, center = centred_vectors(model, tokenizer, sentences, max_length, batch_size)
        index = cls(frame, vectors, representation_kind(model), max_length, center)
        if cache is not None:
            save_index_file(cache, key, vectors, index.kind, center)  # a read-only run folder: not kept
        return index

    def query(self, model: Any, tokenizer: Any, sentence: str, k: int = 5) -> list[Neighbor]:
        """The K training sentences most similar to SENTENCE, the most similar first."""
        raw = embed(model, tokenizer, [clean_sentence(sentence)], self.max_length, normalize=False)
        return self.nearest(unit(raw - self.center)[0], k)

    def nearest(self, vector: np.ndarray, k: int = 5) -> list[Neighbor]:
        if len(self.vectors) == 0 or k < 1:
            return []
        scores = self.vectors @ vector
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        sources = self.frame["source"] if "source" in self.frame else pd.Series([""] * len(self.frame))
        return [
            Neighbor(
                sentence=str(self.frame["sentence"].iloc[i]),
                label=int(self.frame["label"].iloc[i]),
                source=str(sources.iloc[i]),
                similarity=float(scores[i]),
            )
            for i in top
        ]


# ---------------------------------------------------------------- a run's index (CLI and TUI alike)


def training_frame(model_dir: Path) -> pd.DataFrame:
    """The sentences the run at MODEL_DIR was trained on, with the labels it trained with (core
    `run_training_frame`; the bundled CoLA train split for a plain saved model)."""
    from workbench.core.base.layout import CONFIG_FILE, MODEL_DIR, RunError, run_of_model
    from workbench.core.runs.lookup import load_run_data
    from workbench.core.runs.train_rows import run_training_frame

    run_dir = run_of_model(model_dir)
    if run_dir is None and model_dir.name == MODEL_DIR and not (model_dir.parent / CONFIG_FILE).is_file():
        raise RunError(
            f"{model_dir.parent}: no config.json beside its model/, so the sentences it was trained on are "
            "unknown; copy the run's config.json back"
        )
    if run_dir is not None:
        return run_training_frame(run_dir)  # its recorded rows: overrides and a map subset applied
    return load_run_data(None)["train"]


def index_file(model_dir: Path) -> Path | None:
    """Where MODEL_DIR's index of training sentences is kept: beside the model of a run folder; None for a
    model outside a run (its index lives in memory only)."""
    from workbench.core.base.layout import run_of_model

    run_dir = run_of_model(model_dir)
    return run_dir / INDEX_FILE if run_dir is not None else None


def run_index(model: Any, tokenizer: Any, model_dir: Path, max_length: int = INDEX_MAX_LENGTH) -> NeighborIndex:
    """The index of MODEL_DIR's training sentences by its model (loaded from MODEL_DIR); a run folder
    keeps it beside the model (neighbors-train.npz, written by the first query), keyed by the model's
    version (core `model_version`: its weight files' sizes and modification times)."""
    from workbench.core.model.loading import model_version

    return NeighborIndex.build(
        model,
        tokenizer,
        training_frame(model_dir),
        max_length=max_length,
        cache=index_file(model_dir),
        model_key=model_version(model_dir),
    )
