"""Fine-tune the real embedded model on the real CoLA training split (about 3 minutes on 2 idle cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.base.config import TrainConfig
from workbench.core.training.train import train


@pytest.mark.slow
def test_embedded_model_learns_cola(tmp_path: Path) -> None:
    from transformers import pipeline

    config = TrainConfig(epochs=3)  # the default recipe, shortened
    result = train(config, tmp_path / "run")
    assert result.status == "done"
    # Chance is MCC 0 with a standard deviation of about 0.045 on 516 sentences.
    assert result.final["holdout_mcc"] > 0.1, result.final
    assert result.final["in_domain_dev_mcc"] > 0.15, result.final
    assert result.best_val_mcc > 0.2

    classify = pipeline("text-classification", model=str(tmp_path / "run" / "model"))
    good, bad = classify(["The book was written by John.", "The book was written John by."])
    assert good["label"] == "acceptable"
    assert bad["label"] == "unacceptable"
