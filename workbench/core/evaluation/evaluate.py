"""Metrics and evaluation of a classifier on a CoLA split."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.core.base.config import LABELS

if TYPE_CHECKING:
    from workbench.core.evaluation.datasets import ScoredData


def compute_metrics(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, Any]:
    """MCC, accuracy and the confusion matrix (rows: true label, columns: predicted)."""
    import warnings

    from sklearn.metrics import accuracy_score, confusion_matrix, matthews_corrcoef

    if len(labels) == 0:
        return {"mcc": 0.0, "accuracy": 0.0, "confusion": [[0, 0], [0, 0]], "n": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class only (a small source): MCC is 0, said in the report
        return {
            "mcc": float(matthews_corrcoef(labels, predictions)),
            "accuracy": float(accuracy_score(labels, predictions)),
            "confusion": confusion_matrix(labels, predictions, labels=[0, 1]).tolist(),
            "n": len(labels),
        }


def logits_for(
    model: Any, tokenizer: Any, sentences: Sequence[str], max_length: int = 128, batch_size: int = 128
) -> np.ndarray:
    """Logits of every sentence, batched by length in tokens so padding stays small."""
    import torch

    from workbench.core.model.loading import by_token_count

    model.eval()
    device = next(model.parameters()).device
    order = by_token_count(tokenizer, sentences, max_length)
    out = np.zeros((len(sentences), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [sentences[i] for i in chunk], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            out[chunk] = model(**batch).logits.float().cpu().numpy()
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


PREDICTION_COLUMNS = ["sentence", "label", "predicted", "p_acceptable", "source", "p_acceptable_raw"]


def degenerate_warning(confusion: list[list[int]], short: bool = False) -> str:
    """Why answers scored by CONFUSION ([[tn, fp], [fn, tp]]) are no better than always answering the
    majority class: one label for every sentence, an MCC below 0, or an accuracy below the majority
    class's share with an MCC within chance of 0 (under 2/sqrt(n), two standard errors when answers are
    independent of the labels). "" when none holds. A positive MCC beyond chance is not flagged when the
    accuracy is below the majority share: the decision threshold is chosen for MCC, and trading accuracy
    for it is what it does (a 1-epoch run: holdout MCC 0.109, accuracy 0.616 < 0.686).
    The one place a degenerate run is recognised (CLI and TUI)."""
    (tn, fp), (fn, tp) = confusion
    n = tn + fp + fn + tp
    if n == 0:
        return ""
    predicted_acceptable, predicted_unacceptable = fp + tp, tn + fn
    if predicted_acceptable == 0 or predicted_unacceptable == 0:
        only = LABELS[1 if predicted_acceptable else 0]
        if short:
            return f"one label for all ('{only}'): MCC is 0"
        return (
            f"WARNING: the model predicts '{only}' for every sentence, so MCC is 0: "
            "a known CoLA failure (try another seed or a lower learning rate)"
        )
    accuracy = (tn + tp) / n
    majority = max(tn + fp, fn + tp)
    majority_label = LABELS[1 if fn + tp >= tn + fp else 0]
    denominator = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    mcc = (tp * tn - fp * fn) / denominator if denominator else 0.0
    chance = 2 / n**0.5
    if mcc < 0 or (accuracy < majority / n and mcc < chance):
        if short:
            return f"worse than always '{majority_label}': MCC {mcc:.3f}, acc {accuracy:.3f} < {majority / n:.3f}"
        return (
            f"WARNING: worse than always answering '{majority_label}' (MCC {mcc:.3f}, accuracy "
            f"{accuracy:.3f} < {majority / n:.3f} majority share): the model did not learn "
            "(try another seed, more epochs or a lower learning rate)"
        )
    return ""


@dataclass
class EvalReport:
    name: str
    mcc: float
    accuracy: float
    confusion: list[list[int]]
    n: int
    per_source: list[dict[str, Any]]
    predictions: pd.DataFrame = field(repr=False)
    threshold: float = 0.5  # t, the decision threshold folded into the model (core/evaluation/threshold.py)
    mcc_at_half: float | None = None  # MCC of the model as trained (before calibration) at its p >= 0.5
    temperature: float = 1.0  # T, folded with t: shipped p = sigmoid((z - logit(t)) / T)
    data: str = ""  # the file or folder scored when not the run's own data (core.evaluation.datasets)

    @property
    def single_class(self) -> bool:
        return self.predictions["predicted"].nunique() < 2

    def warning(self) -> str:
        """A degenerate model's warning (core `degenerate_warning`), or ""."""
        return degenerate_warning(self.confusion)

    def misclassified(self) -> pd.DataFrame:
        """Wrong predictions, the most confident first."""
        wrong = self.predictions[self.predictions["label"] != self.predictions["predicted"]]
        confidence = wrong[["p_unacceptable", "p_acceptable"]].max(axis=1)
        return wrong.assign(confidence=confidence).sort_values("confidence", ascending=False)

    def summary(self) -> dict[str, Any]:
        return {
            "mcc": self.mcc,
            "accuracy": self.accuracy,
            "confusion": self.confusion,
            "n": self.n,
            "per_source": self.per_source,
            "single_class": self.single_class,
            "warning": self.warning(),
            "decision_threshold": self.threshold,
            "temperature": self.temperature,
            "mcc_at_half": self.mcc_at_half,
            **({"data": self.data} if self.data else {}),
        }

    def save_predictions(self, path: Path) -> None:
        """PATH: one row per sentence; p_acceptable is the shipped probability, p_acceptable_raw the model's
        as trained (before calibration), `predicted` the model's own label."""
        columns = [c for c in PREDICTION_COLUMNS if c in self.predictions]
        self.predictions[columns].to_csv(path, sep="\t", index=False, float_format="%.6g")


EVAL_LOCK = ".eval.lock"


@contextmanager
def eval_json_lock(run_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold RUN_DIR's eval.json lock: every read-modify-write of eval.json (and of the predictions
    files it names) happens inside it, so two writers (a TUI evaluation during a training's final
    evaluation, the CLI and the TUI at once) never lose each other's entry."""
    from filelock import FileLock, Timeout

    from workbench.core.base.layout import RunError

    lock = FileLock(str(run_dir / EVAL_LOCK))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise RunError(f"{run_dir / 'eval.json'}: another process has held it for {timeout:.0f} s") from None
    try:
        yield
    finally:
        lock.release()


def update_eval_json(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read RUN_DIR's eval.json, let CHANGE edit it in place, write it back atomically, all under
    `eval_json_lock`. Returns what was written."""
    import json

    from workbench.core.base.durable import write_json_atomic
    from workbench.core.base.layout import RunError

    eval_path = run_dir / "eval.json"
    with eval_json_lock(run_dir):
        try:
            existing = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else {}
        except (OSError, ValueError) as err:
            raise RunError(f"{eval_path}: cannot read ({err}); move it aside to record again") from None
        if not isinstance(existing, dict):
            raise RunError(f"{eval_path}: not an eval.json (an object of evaluations expected)")
        change(existing)
        write_json_atomic(eval_path, existing)
        return existing


def record_report(run_dir: Path, report: EvalReport) -> Path:
    """Keep REPORT in a run folder: its summary under its name in eval.json (other
    datasets' entries stay), its predictions in predictions[-NAME].tsv. Returns that file.

    Under eval.json's lock. An entry of the same name scored on other data (another file with the
    same stem) is never replaced: RunError, and nothing is written."""
    import os

    from workbench.core.base.layout import RunError

    target = predictions_file(run_dir, report.name)

    def change(existing: dict[str, Any]) -> None:
        before = existing.get(report.name)
        if isinstance(before, dict) and before.get("data", "") != report.data:
            raise RunError(
                f"{run_dir / 'eval.json'}: {report.name} was scored on "
                f"{before.get('data') or 'the run data'}, not {report.data or 'the run data'}; "
                "rename the file to record it beside"
            )
        staged = target.with_name(f".{target.name}.tmp")
        report.save_predictions(staged)
        os.replace(staged, target)
        existing[report.name] = report.summary()

    update_eval_json(run_dir, change)
    return target


def predictions_file(run_dir: Path, name: str) -> Path:
    """Where a run folder keeps its predictions on dataset NAME: predictions.tsv for the holdout,
    predictions-NAME.tsv else (a name with other characters than letters, digits, '.', '_' and '-'
    gets them replaced and a short hash of the name, so two names never share a file)."""
    import hashlib
    import re

    if name == "holdout":
        return run_dir / "predictions.tsv"
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    if safe != name:
        safe += "-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return run_dir / f"predictions-{safe}.tsv"


def evaluate_frame(
    model: Any,
    tokenizer: Any,
    frame: pd.DataFrame,
    name: str = "",
    max_length: int = 128,
    batch_size: int = 128,
    data: str = "",
) -> EvalReport:
    from workbench.core.evaluation.threshold import logit, model_temperature, model_threshold

    sentences = frame["sentence"].tolist()
    logits = logits_for(model, tokenizer, sentences, max_length, batch_size)
    probs = softmax(logits)
    predicted = logits.argmax(axis=-1)
    labels = frame["label"].to_numpy()
    threshold, temperature = model_threshold(model), model_temperature(model)
    raw_log_odds = (logits[:, 1].astype(np.float64) - logits[:, 0]) * temperature + logit(threshold)
    predictions = pd.DataFrame(
        {
            "source": frame["source"].to_numpy(),
            "line": frame["line"].to_numpy() if "line" in frame else np.arange(1, len(frame) + 1),
            "sentence": sentences,
            "label": labels,
            "predicted": predicted,
            "logit_unacceptable": logits[:, 0],
            "logit_acceptable": logits[:, 1],
            "p_unacceptable": probs[:, 0],
            "p_acceptable": probs[:, 1],
            "p_acceptable_raw": 1.0 / (1.0 + np.exp(-raw_log_odds)),
        }
    )
    overall = compute_metrics(labels, predicted)
    per_source = []
    for source, group in predictions.groupby("source", sort=True):
        metrics = compute_metrics(group["label"].tolist(), group["predicted"].tolist())
        per_source.append(
            {"source": str(source), "n": metrics["n"], "mcc": metrics["mcc"], "accuracy": metrics["accuracy"]}
        )
    at_half = compute_metrics(labels, (raw_log_odds >= 0).astype(int))["mcc"]
    return EvalReport(
        name=name,
        mcc=overall["mcc"],
        accuracy=overall["accuracy"],
        confusion=overall["confusion"],
        n=overall["n"],
        per_source=per_source,
        predictions=predictions,
        threshold=threshold,
        mcc_at_half=at_half,
        data=data,
        temperature=temperature,
    )


def evaluate_and_record(
    model: Any, tokenizer: Any, scored: ScoredData, recording: Path | None, max_length: int = 128, batch_size: int = 128
) -> tuple[EvalReport, Path | None]:
    """Score MODEL on SCORED (core/evaluation/datasets.py: the frame, and the name it is recorded under)
    and, when RECORDING is a run folder, record it there (eval.json's entry and the predictions file).
    The one sequence `workbench eval`, the Evaluate pane and the diff screen run. The report, and the
    predictions file written (None when nothing is recorded)."""
    report = evaluate_frame(model, tokenizer, scored.frame, scored.name, max_length, batch_size, data=scored.data)
    return report, (record_report(recording, report) if recording is not None else None)
