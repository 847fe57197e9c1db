"""The Evaluate pane's text: the figures of an evaluation, the calibration shipped, a misclassified sentence
or a failed minimal pair in detail, the grammar phenomena of an evaluation. Pure functions of what they
show, apart from the pane's widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text

from workbench.core.base.config import LABELS
from workbench.tui.style import tone

ANNOTATED = ("in_domain_dev", "holdout")


def phenomena_of(dataset: str, evaluation: Any) -> tuple[Any, str]:
    """The grammar phenomena of EVALUATION (core/evaluation/phenomena.py), or None and why."""
    from workbench.core.data.cola import DataError
    from workbench.core.evaluation.phenomena import phenomena_from_predictions

    if evaluation is None:
        return None, ""
    if dataset not in ANNOTATED:
        return None, "only in_domain_dev and holdout are annotated (d)"
    try:
        return phenomena_from_predictions({dataset: evaluation.predictions}), ""
    except DataError as err:
        return None, str(err)


def confusion_text(confusion: list[list[int]]) -> str:
    (tn, fp), (fn, tp) = confusion
    return f"confusion pred0 pred1\n   true0 {tn:>5} {fp:>5}\n   true1 {fn:>5} {tp:>5}"


def log_odds(p_acceptable: float) -> float:
    """logit[acceptable] - logit[unacceptable] of a two-label softmax, from its p(acceptable)."""
    import math

    p = min(max(p_acceptable, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def metrics_text(evaluation: Any, recorded: bool, untrained: bool, slices_before: Any, calibration: str) -> str:
    """EVALUATION's figures (markup): name, n and whether recorded; MCC and accuracy; what is wrong with them;
    the confusion; then the calibration (SLICES_BEFORE: the model as trained, for its ECE; CALIBRATION: the
    note of what was shipped). Where the panel is short (60x20), the lines at its end are the ones cut."""
    from workbench.core.evaluation.evaluate import degenerate_warning

    summary = evaluation.summary
    where = "recorded" if recorded else f"[{tone('warn')}]not recorded[/]"
    threshold = summary.get("decision_threshold") or 0.5
    temperature = summary.get("temperature") or 1.0
    calibrated = ""
    if (threshold != 0.5 or temperature != 1.0) and summary.get("mcc_at_half") is not None:
        ece = f" · ECE {slices_before.reliability.ece:.3f}" if slices_before is not None else ""
        calibrated = (
            f"\ncalibrated p: t {threshold:.2f} · T {temperature:.2f}\nbefore: MCC {summary['mcc_at_half']:.3f}{ece}"
        )
    calibrated += calibration
    confusion = summary.get("confusion") or [[0, 0], [0, 0]]
    warning = degenerate_warning(confusion, short=True)
    single = f"\n[{tone('bad')}]⚠ {escape(warning)}[/]" if warning else ""
    if untrained:
        single += f"\n[{tone('warn')}]untrained model: scores are chance level[/]"
    return (
        f"[b]{escape(evaluation.name)}[/b] n={evaluation.n} · {where}\n"
        f"[b]MCC {evaluation.mcc:.3f}[/b] · accuracy {summary.get('accuracy', 0.0):.3f}"
        f"{single}\n{confusion_text(confusion)}{calibrated}"
    )


def calibration_text(run_dir: Path | None) -> str:
    """Which calibration the run in RUN_DIR shipped and why (eval.json's `calibration`), with its warnings
    (markup)."""
    from workbench.core.base.layout import RunError
    from workbench.core.evaluation.calibration import calibration_note
    from workbench.core.evaluation.recorded import read_eval_json

    try:
        entry = read_eval_json(run_dir).get("calibration") if run_dir is not None else None
    except RunError:
        return ""
    lines, warnings = calibration_note(entry) if isinstance(entry, dict) else ([], [])
    return "".join(f"\n{escape(line)}" for line in lines) + "".join(
        f"\n[{tone('warn')}]⚠ {escape(warning)}[/]" for warning in warnings
    )


def failed_pair_text(row: Any) -> Text:
    """A failed minimal pair: both sentences with their p(acceptable), its line and paradigm."""
    text = Text()
    for name, key, p in (("good", "good", row["p_good"]), ("bad ", "bad", row["p_bad"])):
        text.append(f"{name} p(ok) {p:.3f}  ", style="bold")
        text.append(f"{row[key]}\n")
    text.append(
        f"line {row['line']} · {row['paradigm']} · enter: pin the good one in Predict, the bad one as its variant",
        style=tone("muted"),
    )
    return text


def wrong_sentence_text(row: Any) -> Text:
    """A misclassified sentence: itself, the kind of error, its p(acceptable), log-odds and source."""
    p = float(row["p_acceptable"])
    text = Text()
    text.append(f"{row['sentence']}\n", style="bold")
    kind = "false positive" if int(row["predicted"]) == 1 else "false negative"
    text.append(
        f"{kind} (true {LABELS[int(row['label'])]}) · p(ok) {p:.3f} · "
        f"Δlogits {log_odds(p):+.2f} · source {row['source'] or '—'}"
    )
    text.append(" · enter: try it in Predict (with its true label)", style=tone("muted"))
    return text


def good_of_pair(row: Any) -> Any:
    """The good sentence of a failed minimal pair (a row of the failed pairs) as a core Prediction, pinned in
    Predict beside the bad one."""
    from workbench.core.model.predict import Prediction

    p = float(row["p_good"])
    return Prediction(
        sentence=str(row["good"]),
        label=LABELS[int(p > 0.5)],
        probabilities={"unacceptable": 1 - p, "acceptable": p},
        logits=[],
        tokens=0,
        truncated=False,
    )


def wrong_columns(pairs: bool) -> tuple[tuple[str, str], ...]:
    """The error list's columns, (label, key): p(acceptable) (the scale of the detail below), the predicted label
    (every row is an error: the true label is the other one) and the sentence; for a minimal-pair suite, the
    margin p(good) - p(bad), the paradigm and the pair."""
    if pairs:
        return (("Δp", "p"), ("parad", "pred"), ("good ≻ bad", "sentence"))
    return (("p(ok)", "p"), ("pred", "pred"), ("sentence", "sentence"))
