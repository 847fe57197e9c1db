#!/usr/bin/env python3
"""Re-calibrate a finished run in place: threshold and temperature chosen again on its validation split
(from the model as trained: whatever it carried folded is undone first), folded into model/, then its
in_domain_dev and holdout scored again and recorded. Prints the holdout's figures before and after.

    python scripts/recalibrate.py RUNS_DIR/RUN [--json]

For a run trained before the temperature existed (threshold only), "before" is what it shipped then.
The holdout never chooses anything: it is only scored."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def holdout_figures(run_dir: Path) -> dict[str, Any]:
    """MCC and ECE of RUN_DIR's recorded holdout, on the probabilities it shipped and on the model as trained."""
    from workbench.core.evaluation.recorded import load_recorded
    from workbench.core.evaluation.slices import reliability
    from workbench.core.evaluation.threshold import raw_probability

    recorded = load_recorded(run_dir, "holdout")
    if recorded is None:
        return {}
    frame, summary = recorded.predictions, recorded.summary
    labels = frame["label"].to_numpy(dtype=int)
    shipped = frame["p_acceptable"].to_numpy(dtype=float)
    threshold = float(summary.get("decision_threshold") or 0.5)
    raw = raw_probability(shipped, threshold, float(summary.get("temperature") or 1.0))
    if "p_acceptable_raw" in frame:  # written at full precision beside the shipped ones
        raw = frame["p_acceptable_raw"].to_numpy(dtype=float)
    threshold_only = raw_probability(raw, 1 - threshold)  # sigmoid(logit(p) - logit(t)): the fold without T
    predicted = frame["predicted"].to_numpy(dtype=int)
    return {
        "n": recorded.n,
        "mcc": recorded.mcc,
        "decision_threshold": summary.get("decision_threshold", 0.5),
        "temperature": summary.get("temperature", 1.0),
        "ece_shipped": reliability(labels, shipped, predicted=predicted).ece,
        "ece_threshold_only": reliability(labels, threshold_only, predicted=predicted).ece,
        "ece_as_trained": reliability(labels, raw).ece,
        "decisions_are_raw_p_at_least_t": bool(((raw >= threshold) == (predicted == 1)).all()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run folder")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args(argv)

    from workbench.core.base.config import TrainConfig
    from workbench.core.evaluation.calibration import calibrate_run
    from workbench.core.evaluation.evaluate import evaluate_frame, record_report
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.core.runs.lookup import load_run_data

    run_dir = args.run
    if not (run_dir / "model" / "config.json").is_file():
        print(f"{run_dir}: no trained model (model/config.json)", file=sys.stderr)
        return 2
    before = holdout_figures(run_dir)
    config = TrainConfig.load(run_dir / "config.json")
    calibration = calibrate_run(run_dir, config, enabled=True, again=True)
    if calibration is None:
        print(f"{run_dir}: its head cannot be calibrated (see eval.json's calibration)", file=sys.stderr)
        return 2
    model = load_model(str(run_dir / "model"))
    tokenizer = load_tokenizer(str(run_dir / "model"))
    cola = load_run_data(run_dir)
    for name in ("in_domain_dev", "holdout"):
        record_report(
            run_dir, evaluate_frame(model, tokenizer, cola[name], name, config.max_length, config.eval_batch_size)
        )
    after = holdout_figures(run_dir)
    result = {
        "run": str(run_dir),
        "validation": calibration.to_dict(),
        "holdout_before": before,
        "holdout_after": after,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{run_dir}: {calibration.summary()}")
    if before:
        print(
            f"holdout before: MCC {before['mcc']:.4f}, ECE {before['ece_shipped']:.3f} on what it shipped "
            f"(t {before['decision_threshold']:.3f}, T {before['temperature']:.2f})"
        )
    print(
        f"holdout after:  MCC {after['mcc']:.4f}, ECE {after['ece_shipped']:.3f} on what it ships now; "
        f"the threshold alone folded would ship ECE {after['ece_threshold_only']:.3f}; the model as trained "
        f"(at 0.5): ECE {after['ece_as_trained']:.3f}; every holdout label is raw p >= t: "
        f"{after['decisions_are_raw_p_at_least_t']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
