"""Recorded evaluations written as `workbench eval` writes them, for tests that read them back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from workbench.core.data.annotations import load_annotations, match_annotations
from workbench.core.data.cola import load_cola
from workbench.core.evaluation.evaluate import EvalReport, compute_metrics


def record(run_dir: Path, name: str, rows: list[tuple[str, int, int, float, str]]) -> None:
    """Record an evaluation in RUN_DIR as `workbench eval` does (EvalReport, eval.json + predictions file)."""
    from workbench.core.evaluation.evaluate import record_report

    frame = pd.DataFrame(rows, columns=["sentence", "label", "predicted", "p_acceptable", "source"])
    frame["p_unacceptable"] = 1 - frame["p_acceptable"]
    metrics = compute_metrics(frame["label"].tolist(), frame["predicted"].tolist())
    per_source = []
    for source, group in frame.groupby("source"):
        scores = compute_metrics(group["label"].tolist(), group["predicted"].tolist())
        per_source.append({"source": source, "n": scores["n"], "mcc": scores["mcc"], "accuracy": scores["accuracy"]})
    record_report(
        run_dir,
        EvalReport(
            name=name,
            mcc=metrics["mcc"],
            accuracy=metrics["accuracy"],
            confusion=metrics["confusion"],
            n=metrics["n"],
            per_source=per_source,
            predictions=frame,
        ),
    )


def write_annotated_run(
    run_dir: Path, flip_major: str | None = None, noise: float = 0.0, flip_share: float = 1.0
) -> None:
    """A run folder with recorded predictions on both dev sets: every sentence right, except a seeded
    share NOISE of them (the same sentences in every run), and (when FLIP_MAJOR) a seeded share FLIP_SHARE of
    those with that major feature, whose prediction is flipped."""
    import numpy as np

    from workbench.core.evaluation.evaluate import predictions_file

    annotations = load_annotations()
    cola = load_cola()
    run_dir.mkdir(parents=True)
    summary = {}
    for number, split in enumerate(("in_domain_dev", "holdout")):
        frame = cola[split]
        predicted = frame["label"].to_numpy().copy()
        noisy = np.random.default_rng([11, number]).random(len(frame)) < noise
        predicted[noisy] = 1 - predicted[noisy]
        if flip_major:
            match = match_annotations(annotations, split, frame["sentence"].tolist())
            from workbench.core.data.annotations import MAJOR_FEATURES

            major = annotations.major()[:, list(MAJOR_FEATURES).index(flip_major)]
            rows = match.dev_index[major[match.annotation_index] == 1]
            rows = rows[np.random.default_rng([12, number]).random(len(rows)) < flip_share]
            predicted[rows] = 1 - predicted[rows]
        table = pd.DataFrame(
            {
                "sentence": frame["sentence"],
                "label": frame["label"],
                "predicted": predicted,
                "p_acceptable": predicted.astype(float),
                "source": frame["source"],
            }
        )
        table.to_csv(predictions_file(run_dir, split), sep="\t", index=False)
        summary[split] = {"mcc": 0.0, "n": len(table)}
    (run_dir / "eval.json").write_text(json.dumps(summary))
