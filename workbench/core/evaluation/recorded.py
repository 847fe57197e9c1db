"""The evaluations a run folder has recorded, read back: eval.json's entries and their predictions files
(what `record_report` wrote, from `workbench eval`, training's final evaluation or the TUI).

Importing this module is cheap: pandas loads inside the functions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.base.layout import RunError

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.evaluation.evaluate import EvalReport

STANDARD_DATASETS = ("holdout", "in_domain_dev", "validation", "train")
ERROR_KINDS = ("all", "false_positive", "false_negative")
ERROR_KIND_NAMES = {"all": "all errors", "false_positive": "false positives", "false_negative": "false negatives"}


@dataclass
class RecordedEvaluation:
    """One evaluation of a model on a dataset: eval.json's summary and the per-sentence predictions
    (sentence, label, predicted, p_acceptable, source)."""

    name: str
    summary: dict[str, Any]
    predictions: pd.DataFrame = field(repr=False)

    @property
    def mcc(self) -> float:
        return float(self.summary.get("mcc", 0.0))

    @property
    def n(self) -> int:
        return int(self.summary.get("n", len(self.predictions)))


def read_eval_json(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR's eval.json ({} when it has none); RunError when it cannot be read."""
    path = run_dir / "eval.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(f"{path}: cannot read ({err})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not an eval.json (an object of evaluations expected)")
    return data


def ordered_names(names: list[str] | set[str]) -> list[str]:
    """The standard datasets first (holdout, in_domain_dev, validation, train), then the others by name."""
    standard = [name for name in STANDARD_DATASETS if name in names]
    return standard + sorted(set(names) - set(STANDARD_DATASETS))


def recorded_names(run_dir: Path) -> list[str]:
    """Datasets RUN_DIR has recorded an evaluation of: an eval.json entry and its predictions file."""
    from workbench.core.evaluation.evaluate import predictions_file

    return ordered_names([name for name in read_eval_json(run_dir) if predictions_file(run_dir, name).is_file()])


def _complete(predictions: pd.DataFrame) -> pd.DataFrame:
    """Older predictions files may lack `predicted` (the argmax: p >= 0.5) or `source`."""
    if "predicted" not in predictions:
        predictions = predictions.assign(predicted=(predictions["p_acceptable"] >= 0.5).astype(int))
    if "source" not in predictions:
        predictions = predictions.assign(source="")
    return predictions.assign(source=predictions["source"].astype(str))


def load_recorded(run_dir: Path, name: str) -> RecordedEvaluation | None:
    """RUN_DIR's recorded evaluation on dataset NAME; None when it has none; RunError when unreadable."""
    from workbench.core.evaluation.evaluate import predictions_file

    summary = read_eval_json(run_dir).get(name)
    path = predictions_file(run_dir, name)
    if not isinstance(summary, dict) or not path.is_file():
        return None
    return RecordedEvaluation(name, summary, _complete(read_predictions(path)))


def from_report(report: EvalReport) -> RecordedEvaluation:
    """An evaluation just made, as it reads back once recorded."""
    from workbench.core.evaluation.evaluate import PREDICTION_COLUMNS

    columns = [c for c in PREDICTION_COLUMNS if c in report.predictions]
    return RecordedEvaluation(report.name, report.summary(), _complete(report.predictions[columns].copy()))


def misclassified(predictions: pd.DataFrame, kind: str = "all") -> pd.DataFrame:
    """The wrong predictions, the most confident first (confidence: max(p, 1 - p)); KIND keeps only
    false positives (unacceptable said acceptable) or false negatives (acceptable said unacceptable)."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"kind: one of {', '.join(ERROR_KINDS)}")
    wrong = predictions[predictions["label"] != predictions["predicted"]]
    if kind == "false_positive":
        wrong = wrong[wrong["predicted"] == 1]
    elif kind == "false_negative":
        wrong = wrong[wrong["predicted"] == 0]
    p = wrong["p_acceptable"].astype(float)
    confidence = p.where(p >= 0.5, 1 - p)
    return wrong.assign(confidence=confidence).sort_values("confidence", ascending=False, kind="stable")


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions file written by `workbench eval` / training (EvalReport.save_predictions)."""
    import pandas as pd

    if not path.is_file():
        raise DiffError(f"{path}: no such predictions file")
    try:
        # keep_default_na=False: a sentence "NA" or "null" is text, not a missing value
        table = pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"sentence": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DiffError(f"{path}: cannot read ({err})") from None
    missing = {"sentence", "label", "p_acceptable"} - set(table.columns)
    if missing:
        raise DiffError(f"{path}: not a predictions file (no {', '.join(sorted(missing))} column)")
    return table


class DiffError(RunError, ValueError):
    """Two prediction tables that cannot be compared (different sentences or labels, a missing file)."""
