"""The nearest-neighbour index of a run's training sentences: a training does not build it (a sweep's
trials would each pay a pass over their training sentences); the first query writes it beside the model,
the file matches a computation by hand, and the next query reads it instead of embedding them again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.core.base.config import TrainConfig
from workbench.core.base.hardware import resolve_precision
from workbench.core.model.sentence_vectors import INDEX_FILE


def mean_pooled_by_hand(model_dir: Path, sentences: list[str]) -> np.ndarray:
    """One sentence at a time (no padding): the mean of the last hidden states, centred, unit length (numpy)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    with torch.no_grad():
        for sentence in sentences:
            batch = tokenizer(sentence, return_tensors="pt", truncation=True, max_length=128)
            hidden = model(**batch, output_hidden_states=True).hidden_states[-1][0]
            rows.append(hidden.mean(dim=0).numpy())
    raw = np.array(rows, dtype=np.float64)
    centred = raw - raw.mean(axis=0)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def test_the_first_query_writes_the_index_that_a_computation_by_hand_gives(
    tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.core.explore import neighbors
    from workbench.core.explore.neighbors import run_index, training_frame
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.core.training.train import train

    run_dir = tmp_path / "run"
    tiny_config.epochs = 1
    assert train(tiny_config, run_dir).status == "done"
    path = run_dir / INDEX_FILE
    assert not path.exists()  # the training spent no pass over its sentences on it
    model = load_model(str(run_dir / "model"))
    run_index(model, load_tokenizer(str(run_dir / "model")), run_dir / "model")
    assert path.is_file()
    sentences = training_frame(run_dir / "model")["sentence"].astype(str).tolist()
    assert len(sentences) == tiny_config.train_limit
    with np.load(path) as saved:
        vectors = saved["vectors"]
    by_hand = mean_pooled_by_hand(run_dir / "model", sentences)
    if resolve_precision("auto", "cpu") == "bf16":  # embedded under bf16 autocast: 3 significant digits
        cosines = (vectors * by_hand).sum(axis=1)
        assert cosines.min() > 0.999, cosines.min()
        np.testing.assert_allclose(vectors, by_hand, atol=3e-2)
    else:
        np.testing.assert_allclose(vectors, by_hand, atol=1e-4)

    def no_second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was computed again instead of read from the run folder")

    monkeypatch.setattr(neighbors, "centred_vectors", no_second_pass)
    index = run_index(model, load_tokenizer(str(run_dir / "model")), run_dir / "model")
    np.testing.assert_array_equal(index.vectors, vectors)
    assert index.query(model, load_tokenizer(str(run_dir / "model")), sentences[3], k=1)[0].sentence == sentences[3]
