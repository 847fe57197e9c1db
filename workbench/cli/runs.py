"""Working with runs: `eval`, `predict`, `runs`, `attach`, `stop`, `export`, `compare`, and `open`
(the terminal workbench on a run)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from workbench.cli import learned
from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliError,
    HelpFormatter,
    allow_pickle_flag,
    app_overrides_flag,
    json_text,
    model_dir_of,
    no_notify_flag,
    print_group,
    run_dir_of,
)
from workbench.cli.progress import Progress
from workbench.core.base.config import PRECISIONS
from workbench.core.base.layout import is_run_folder
from workbench.core.data.cola import SPLIT_NAMES
from workbench.core.evaluation.datasets import recording_folder, scored_data
from workbench.core.evaluation.evaluate import evaluate_and_record
from workbench.core.evaluation.slices import evaluation_slices
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.model.predict import InputError, Predictor
from workbench.core.runs.compare import compare_runs
from workbench.core.runs.lookup import existing_run
from workbench.core.runs.metrics import export_metrics_csv, follow_run
from workbench.core.runs.status import list_runs, run_info, stop_run
from workbench.core.search.groups import group_summary, list_groups

EVAL_EXAMPLES = """examples:
  workbench eval <run>                        the holdout (out_of_domain_dev) of the run's data
  workbench eval <run> --split validation     the run's own validation split
  workbench eval <run> --data sentences.tsv   a file of labelled sentences
  workbench eval <run> --json                 the report as JSON
  workbench eval <run> --slices               where it fails: length, calibration, threshold
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add eval, predict, runs, attach, stop, export, compare and open to SUBPARSERS."""
    evaluate = subparsers.add_parser(
        "eval",
        parents=[common],
        help="MCC, accuracy, confusion, per source",
        description="Score a run's best model on a split of the data it was trained on, split as in\nits training "
        "(or on --data); the report and predictions are kept in the run folder.",
        epilog=EVAL_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    evaluate.add_argument("run", help="run id or folder (or a saved model folder)")
    evaluate.add_argument(
        "--split",
        choices=[*SPLIT_NAMES, "both"],
        default=None,
        help="which split to score; holdout is out_of_domain_dev; both (the two dev sets) "
        "with --phenomena only (default: holdout; with --phenomena, both)",
    )
    evaluate.add_argument(
        "--phenomena",
        action="store_true",
        help="MCC per grammatical feature of the annotated dev sets, with bootstrap intervals, "
        "from the recorded predictions (default: off)",
    )
    evaluate.add_argument(
        "--slices",
        action="store_true",
        help="also where it fails: by sentence length, a reliability diagram with its "
        "calibration error, MCC against the decision threshold (default: off)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON (default: a table)")
    allow_pickle_flag(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    predict = subparsers.add_parser("predict", parents=[common], help="classify sentences (arguments or stdin)")
    predict.add_argument("run", help="run id or folder (or a saved model folder)")
    predict.add_argument("sentences", nargs="*")
    predict.add_argument("--json", action="store_true")
    predict.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32: the probabilities transformers.pipeline() gives (default); bf16: the forward "
        "under bf16 autocast, 2.7x faster for a file of sentences on a 2-core AMD EPYC, "
        "p(acceptable) within about 5e-3 of fp32; auto: bf16 where the hardware "
        "multiplies it natively",
    )
    allow_pickle_flag(predict)
    predict.set_defaults(func=cmd_predict)

    runs = subparsers.add_parser("runs", parents=[common], help="list runs")
    runs.set_defaults(func=cmd_runs)

    attach = subparsers.add_parser("attach", parents=[common], help="follow a running or finished run's progress")
    attach.add_argument("run")
    attach.set_defaults(func=cmd_attach)
    stop = subparsers.add_parser(
        "stop", parents=[common], help="stop a running run at its next batch, with a checkpoint"
    )
    stop.add_argument("run")
    stop.set_defaults(func=cmd_stop)
    export = subparsers.add_parser("export", parents=[common], help="a run's metrics as CSV")
    export.add_argument("run")
    export.add_argument("--out", help="CSV file (default: standard output)")
    export.set_defaults(func=cmd_export)
    compare = subparsers.add_parser("compare", parents=[common], help="configs and validation MCC of runs side by side")
    compare.add_argument("runs_to_compare", nargs="+", metavar="RUN")
    compare.set_defaults(func=cmd_compare)

    open_cmd = subparsers.add_parser("open", parents=[common], help="open the workbench on a run")
    open_cmd.add_argument("run")
    no_notify_flag(open_cmd, argparse.SUPPRESS)  # SUPPRESS: keeps `workbench --no-notify open RUN`
    app_overrides_flag(open_cmd, argparse.SUPPRESS)
    open_cmd.set_defaults(func=cmd_tui)


# ---------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a run on a split of the data it was trained on, split as in its training (or on --data)."""
    if args.phenomena:
        return learned.cmd_eval_phenomena(args)
    if args.split == "both":
        raise CliError("--split both: only with --phenomena (scores the two annotated dev sets together)")
    args.split = args.split or "holdout"
    model_dir = model_dir_of(args)
    run_dir = recording_folder(model_dir)
    scored = scored_data(run_dir, args.data, args.split)
    name = scored.name
    model = load_model(str(model_dir), allow_pickle=args.allow_pickle)
    report, target = evaluate_and_record(model, load_tokenizer(str(model_dir)), scored, run_dir)
    if args.json:
        summary = report.summary()
        if args.slices:
            tokenizer = load_tokenizer(str(model_dir))
            summary["slices"] = evaluation_slices(report.predictions, tokenizer).to_dict()  # shipped p(acceptable)
            summary["slices_before_calibration"] = evaluation_slices(
                report.predictions, tokenizer, report.summary(), before_calibration=True
            ).to_dict()
        print(json_text({name: summary}, indent=2))
    else:
        print_report(report)
        if args.slices:
            print_slices(report, load_tokenizer(str(model_dir)))
    if target is not None:
        print(f"predictions: {target}", file=sys.stderr)
    if report.warning():
        print(report.warning(), file=sys.stderr)
    return 0


def print_report(report: Any) -> None:
    (tn, fp), (fn, tp) = report.confusion
    print(f"{report.name}: {report.n} sentences")
    print(f"  MCC      {report.mcc:.3f}")
    if report.threshold != 0.5 or report.temperature != 1.0:  # calibrated: core/evaluation/threshold.py
        print(
            f"  (on the shipped, calibrated p(acceptable), decided at 0.5: threshold {report.threshold:.3f} and "
            f"temperature {report.temperature:.2f} folded in; before calibration, at 0.5: MCC "
            f"{report.mcc_at_half:.3f})"
        )
    print(f"  accuracy {report.accuracy:.3f}")
    print("  confusion (rows true, columns predicted)")
    print("                 unacceptable  acceptable")
    print(f"    unacceptable {tn:>12}  {fp:>10}")
    print(f"    acceptable   {fn:>12}  {tp:>10}")
    print("  per source      n     MCC   accuracy")
    for row in report.per_source:
        print(f"    {row['source']:<8} {row['n']:>5}  {row['mcc']:>6.3f}  {row['accuracy']:>8.3f}")


def print_slices(report_or_predictions: Any, tokenizer: Any, out: Any = None) -> None:
    """The slices of an evaluation (an EvalReport or its predictions frame: sentence, label, predicted,
    p_acceptable) as three tables on the shipped p(acceptable): by token length, reliability with ECE,
    MCC by threshold; then the same figures before calibration, in one line."""
    out = out or sys.stdout
    predictions = getattr(report_or_predictions, "predictions", report_or_predictions)
    summary = report_or_predictions.summary() if hasattr(report_or_predictions, "summary") else {}
    slices = evaluation_slices(predictions, tokenizer)
    before = evaluation_slices(predictions, tokenizer, summary, before_calibration=True)
    print("  on the shipped p(acceptable) (calibrated; the model's labels are p >= 0.5)", file=out)
    print("  by length (tokens)    n  accuracy     MCC  errors", file=out)
    for row in slices.by_length:
        print(f"    {row.name:<14} {row.n:>6}  {row.accuracy:>8.3f}  {row.mcc:>6.3f}  {row.errors:>6}", file=out)
    print(f"  reliability: confidence of the predicted label, ECE {slices.reliability.ece:.3f}", file=out)
    print("    confidence        n  mean conf  accuracy  gap", file=out)
    for b in slices.reliability.bins:
        if b.n:
            gap = b.accuracy - b.mean_confidence
            print(
                f"    {b.low:.2f}-{b.high:.2f} {b.n:>9}  {b.mean_confidence:>9.3f}  {b.accuracy:>8.3f}  {gap:+.3f}",
                file=out,
            )
    curve = slices.threshold
    print(
        f"  MCC by threshold (shipped p): in use {curve.threshold_in_use:.2f} -> {curve.mcc_in_use:.3f}, "
        f"best {curve.best_threshold:.2f} -> {curve.best_mcc:.3f}",
        file=out,
    )
    cells = [
        f"{t:.2f} {m:+.3f}{'*' if t == curve.best_threshold else ' '}"
        for t, m in zip(curve.thresholds, curve.mcc, strict=True)
    ]
    for start in range(0, len(cells), 5):
        print("    " + "  ".join(cells[start : start + 5]), file=out)
    print("    (* best)", file=out)
    if summary.get("decision_threshold", 0.5) != 0.5 or summary.get("temperature", 1.0) != 1.0:
        print(
            f"  before calibration (as trained, at 0.5): ECE {before.reliability.ece:.3f}, MCC "
            f"{before.threshold.mcc_in_use:.3f};\n    its best threshold {before.threshold.best_threshold:.2f} -> "
            f"{before.threshold.best_mcc:.3f}; folded t {summary['decision_threshold']:.3f}, "
            f"T {summary.get('temperature', 1.0):.2f}",
            file=out,
        )


# ---------------------------------------------------------------- predict


def cmd_predict(args: argparse.Namespace) -> int:
    sentences = args.sentences or [line for line in _read_stdin().splitlines() if line.strip()]
    if not sentences:
        raise CliError("no sentences: pass them as arguments or one per line on stdin")
    predictor = Predictor.load(model_dir_of(args), allow_pickle=args.allow_pickle, precision=args.precision)
    status = 0
    for result in predictor.predict_many(sentences):  # in batches of similar length
        if isinstance(result, InputError):
            print(f"error: {result}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        if args.json:
            print(json_text(result.to_dict(), ensure_ascii=False))
        else:
            probs = result.probabilities
            note = f"  (truncated to {result.tokens} tokens)" if result.truncated else ""
            print(
                f"{result.label:<12}  p(acceptable) {probs['acceptable']:.3f}  "
                f"p(unacceptable) {probs['unacceptable']:.3f}  {result.sentence}{note}"
            )
    return status


def _read_stdin() -> str:
    """Standard input as text; bytes that are not UTF-8 become U+FFFD instead of a traceback."""
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read().decode("utf-8", errors="replace") if buffer is not None else sys.stdin.read()


# ---------------------------------------------------------------- runs, attach, stop, export, compare


def cmd_runs(args: argparse.Namespace) -> int:
    runs = list_runs(Path(args.runs))
    if not runs:
        print(f"no runs in {args.runs}")
        return 0
    print(f"{'run':<22} {'status':<8} {'started':<19} {'epochs':>6} {'best val MCC':>12} {'holdout MCC':>11}")
    for info in runs:
        best = f"{info.best_val_mcc:.3f}" if info.best_val_mcc is not None else "-"
        holdout = f"{info.holdout_mcc:.3f}" if info.holdout_mcc is not None else "-"
        print(f"{info.id:<22} {info.status:<8} {info.started:<19} {info.epochs_text:>6} {best:>12} {holdout:>11}")
        if info.status == "failed" and info.error:
            print(f"{'':<22} {info.error}")
        if info.trained_on:  # overrides or a map's regions: how many of which sentences it trained on
            print(f"{'':<22} {info.trained_on}")
    for group in list_groups(Path(args.runs)):
        print()
        print_group(group_summary(Path(args.runs), group))
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    """Replay a run's events, then follow them live until it ends (Ctrl-C detaches)."""
    run_dir = run_dir_of(args)
    if not is_run_folder(run_dir):
        raise CliError(f"{run_dir}: no such run")
    progress = Progress()
    try:
        for batch in follow_run(run_dir):
            for event in batch:
                progress(event)
    except KeyboardInterrupt:
        progress.close()
        print("\ndetached; the run goes on", file=sys.stderr)
        return 0
    progress.close()
    info = run_info(run_dir)  # the words every face uses for a run's status
    resume = f"; resume with workbench train --resume {run_dir.name}" if info.status == "stopped" else ""
    print(f"{run_dir.name}: {info.summary()}{resume}")
    return 0 if info.status in ("done", "stopped") else EXIT_FAILED


def cmd_stop(args: argparse.Namespace) -> int:
    run_dir = run_dir_of(args)
    stop_run(run_dir)
    print(f"{run_dir.name}: asked to stop at the next batch (a checkpoint is written first)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run's metrics as CSV: one row per step and per epoch event."""
    run_dir = run_dir_of(args)
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            export_metrics_csv(run_dir, out)
    else:
        export_metrics_csv(run_dir, sys.stdout)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Configs side by side (differing fields only) and validation MCC per epoch."""
    comparison = compare_runs([existing_run(Path(args.runs), name) for name in args.runs_to_compare])
    ids = [info.id for info in comparison.runs]
    width = max([len(i) for i in ids] + [10])
    print(f"{'setting':<20} " + " ".join(f"{i:>{width}}" for i in ids))
    if not comparison.differing:
        print("(same configuration)")
    for label, cells in comparison.rows():
        print(f"{label:<20} " + " ".join(f"{cell:>{width}}" for cell in cells))
    for warning in comparison.warnings():
        print(warning, file=sys.stderr)
    return 0


# ---------------------------------------------------------------- open


def cmd_tui(args: argparse.Namespace) -> int:
    """The terminal workbench (`workbench` with no command, or `open RUN`)."""
    run = getattr(args, "run", None)
    if run is not None:
        existing_run(Path(args.runs), run)  # an unknown run is an error here, not an empty "new" run in the app
    from workbench.tui.app import make_app, run_without_joining  # Textual only when the TUI opens

    app = make_app(
        model=args.model,
        data=args.data,
        runs_dir=Path(args.runs),
        run=run,
        notify=False if getattr(args, "no_notify", False) else None,
        overrides=Path(args.app_overrides) if getattr(args, "app_overrides", None) else None,
    )
    code = run_without_joining(app)
    # Quit at once: the app has ended (a training it ran stopped and saved first); what remains is the
    # interpreter's own teardown, which waits for worker threads still loading a model or a tokenizer and
    # frees torch's objects one by one (1.4-1.9 s measured). Every file the workbench writes is already
    # whole on disk (atomic replace), so nothing is lost by skipping it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
