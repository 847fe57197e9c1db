"""Fine-tune the real embedded model on the real CoLA training split: one epoch of the default recipe at
batch 32 (about 80 s on one core of the 2-core Xeon with AMX)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.base.config import TrainConfig
from workbench.core.data.cola import load_cola
from workbench.core.training.train import train

# Minimal pairs far from CoLA's own sentences: the acceptable one must score higher.
PAIRS = [
    ("The book was written by John.", "The book was written John by."),
    ("The cat sat on the mat.", "The cat sat mat the on."),
]


@pytest.mark.slow
def test_embedded_model_learns_cola(tmp_path: Path) -> None:
    from sklearn.metrics import matthews_corrcoef
    from transformers import pipeline

    # The default recipe, one epoch of all 7,695 training sentences, at batch 32: a 1-epoch run's own default
    # (batch 8) learns more but takes 1.7x as long, the suite's longest test already.
    config = TrainConfig(epochs=1, batch_size=32)
    result = train(config, tmp_path / "run")
    assert result.status == "done"
    # Chance is MCC 0 with a standard deviation of about 0.045 on 516 (527) sentences; measured after one
    # epoch: holdout 0.127 / 0.159, in_domain_dev 0.167 / 0.202 (seeds 42 / 43).
    assert result.final["in_domain_dev_mcc"] > 0.08, result.final
    assert result.final["holdout_mcc"] > 0.05, result.final

    # The saved folder is what pipeline() loads, and its labels give the recorded MCC (sklearn's, not ours).
    classify = pipeline("text-classification", model=str(tmp_path / "run" / "model"), top_k=None)
    dev = load_cola()["in_domain_dev"]
    answers = classify(dev["sentence"].tolist(), batch_size=64)
    predicted = [int(max(answer, key=lambda a: a["score"])["label"] == "acceptable") for answer in answers]
    assert matthews_corrcoef(dev["label"].tolist(), predicted) == pytest.approx(
        result.final["in_domain_dev_mcc"], abs=0.01
    )
    for good, bad in PAIRS:
        scores = [{a["label"]: a["score"] for a in answer}["acceptable"] for answer in classify([good, bad])]
        assert scores[0] > scores[1], (good, bad, scores)
