"""A run's holdout calibration, computed independently of the workbench: textbook ECE (10 equal-width bins
over the confidence of the predicted label) on the shipped p(acceptable) and on the model as trained
(p_acceptable_raw at 0.5), and MCC by scikit-learn.   python benchmarks/holdout_ece.py RUN_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import matthews_corrcoef


def ece(p_acceptable: np.ndarray, predicted: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    confidence = np.where(predicted == 1, p_acceptable, 1 - p_acceptable)
    right = (predicted == labels).astype(float)
    index = np.clip(np.digitize(confidence, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    return float(
        sum(
            abs(right[index == b].mean() - confidence[index == b].mean()) * (index == b).mean()
            for b in range(bins)
            if (index == b).any()
        )
    )


def main(run_dir: Path) -> None:
    table = pd.read_csv(run_dir / "predictions.tsv", sep="\t", keep_default_na=False)
    calibration = json.loads((run_dir / "eval.json").read_text())["calibration"]
    labels, shipped = table["label"].to_numpy(), table["p_acceptable"].to_numpy()
    predicted = table["predicted"].to_numpy()
    raw = table["p_acceptable_raw"].to_numpy()
    print(
        f"{run_dir.name}: holdout, {len(table)} sentences; t {calibration['threshold']:.3f}, "
        f"T {calibration['temperature']:.2f}"
    )
    print(f"  MCC (shipped labels)            {matthews_corrcoef(labels, predicted):.4f}")
    at_t = (raw >= calibration["threshold"]).astype(int)
    print(f"  MCC (raw p >= t)                {matthews_corrcoef(labels, at_t):.4f}")
    print(f"  ECE shipped p (t and T folded)  {ece(shipped, predicted, labels):.4f}")
    print(f"  ECE as trained (raw p at 0.5)   {ece(raw, (raw >= 0.5).astype(int), labels):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
