"""What the model has learned, from the shell: `eval --phenomena`, `diff --phenomena`, `data map` and `pairs`.

A thin face over core/evaluation/phenomena.py, core/explore/cartography.py and core/explore/pairs.py:
`register` adds `pairs`, `add_data_commands` adds `data map` (called by data.py), and runs.py and
explore.py hand `eval --phenomena` and `diff --phenomena` here. Plain text legible at 80 columns (signs
and words, never colour alone), or JSON."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from workbench.cli.common import allow_pickle_flag, count_limit, json_text, whole_number

WIDTH = 80


def _clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _run_dir(args: argparse.Namespace, name: str | None = None) -> Path:
    from workbench.core.runs.lookup import existing_run

    # any folder with recorded predictions (a run, or predictions copied elsewhere); an unknown name lists the runs
    return existing_run(Path(args.runs), name or args.run)


def _marked(words: list[tuple[str, bool]]) -> str:
    """Words with the changed ones in [brackets] (as `explain --versus` shows them)."""
    return " ".join(f"[{w}]" if changed else w for w, changed in words)


# ---------------------------------------------------------------- phenomena


def _annotations(run_dir: Path) -> Any:
    from workbench.core.data.annotations import annotations_path, load_annotations
    from workbench.core.runs.lookup import run_data_spec

    return load_annotations(annotations_path(run_data_spec(run_dir).data or None))


def run_phenomena(args: argparse.Namespace, run_dir: Path, split: str) -> Any:
    """RUN_DIR's phenomena on SPLIT from its recorded predictions; a split not recorded yet is evaluated
    (and recorded, as `workbench eval` does) first."""
    from workbench.core.evaluation.phenomena import phenomena_from_predictions, splits_of
    from workbench.core.evaluation.recorded import from_report, load_recorded

    predictions: dict[str, Any] = {}
    missing = []
    for name in splits_of(split):
        recorded = load_recorded(run_dir, name)
        if recorded is None:
            missing.append(name)
        else:
            predictions[name] = recorded.predictions
    if missing:
        from workbench.core.base.layout import model_folder
        from workbench.core.evaluation.evaluate import evaluate_frame, record_report
        from workbench.core.model.loading import load_model, load_tokenizer
        from workbench.core.runs.lookup import load_run_data

        folder = model_folder(run_dir)
        model = load_model(str(folder), allow_pickle=getattr(args, "allow_pickle", False))
        tokenizer = load_tokenizer(str(folder))
        cola = load_run_data(run_dir)
        for name in missing:
            print(f"evaluating {run_dir.name} on {name} (not recorded yet)...", file=sys.stderr)
            report = evaluate_frame(model, tokenizer, cola[name], name)
            record_report(run_dir, report)
            predictions[name] = from_report(report).predictions
    ordered = {name: predictions[name] for name in splits_of(split)}
    return phenomena_from_predictions(ordered, _annotations(run_dir))


def _interval(low: float, high: float) -> str:
    return f"[{low:+.2f}, {high:+.2f}]"


def _some_lines(rows: list[dict[str, Any]], most: int = 5) -> str:
    """The line numbers of ROWS, at most MOST of them and how many more."""
    shown = ", ".join(str(row["line"]) for row in rows[:most])
    return shown if len(rows) <= most else f"{shown} and {len(rows) - most} more"


def phenomena_split(split: str | None) -> str:
    """SPLIT for --phenomena (None: both dev sets); RunError for a split that is not annotated, as `eval` and
    `diff` both refuse it."""
    from workbench.core.base.layout import RunError
    from workbench.core.evaluation.phenomena import PHENOMENA_SPLITS

    split = split or "both"
    if split not in PHENOMENA_SPLITS:
        raise RunError(
            f"--phenomena: --split in_domain_dev, holdout or both, not {split} (only the dev sets are annotated)"
        )
    return split


def format_phenomena(report: Any, run: str) -> list[str]:
    where = " + ".join(report.matched)
    matched = sum(report.matched.values())
    lines = textwrap.wrap(f"grammar phenomena: run {run}, {where}, {matched} annotated sentences", WIDTH)
    from workbench.core.data.annotations import ABSENT, WRITTEN_OTHERWISE

    otherwise, absent = report.left_out(WRITTEN_OTHERWISE), report.left_out(ABSENT)
    if otherwise:
        lines += textwrap.wrap(
            f"({len(otherwise)} annotated sentences left out: written otherwise in the annotation "
            f"file than in the data, its lines {_some_lines(otherwise)})",
            WIDTH,
        )
    if absent:
        lines += textwrap.wrap(
            f"({len(absent)} annotated sentences left out: not in the data evaluated at all, as "
            f"when a dev set is partial; the annotation file's lines {_some_lines(absent)})",
            WIDTH,
        )
    lines.append(f"MCC with a 95% bootstrap interval ({report.resamples} resamples). The groups are")
    lines.append("small: read the interval first. 'one class': every sentence has one gold label.")
    header = f"  {'feature':<22} {'n':>5} {'MCC':>6}  {'95% interval':<16} {'accuracy':>8}"
    for kind, title in (("major", "major features"), ("minor", "minor features")):
        lines.append("")
        lines.append(title)
        lines.append(header)
        for score in report.scores:
            if score.kind != kind:
                continue
            name = score.feature if kind == "major" else f"{score.feature}"
            note = "  one class" if score.one_class else ("  (none)" if not score.n else "")
            lines.append(
                f"  {name[:22]:<22} {score.n:>5} {score.mcc:>+6.3f}  "
                f"{_interval(score.mcc_low, score.mcc_high):<16} {score.accuracy:>8.3f}{note}"
            )
    return lines


def cmd_eval_phenomena(args: argparse.Namespace) -> int:
    split = phenomena_split(args.split)
    run_dir = _run_dir(args)
    report = run_phenomena(args, run_dir, split)
    if args.json:
        print(json_text({"run": run_dir.name, **report.to_dict()}, ensure_ascii=False, indent=2))
    else:
        print("\n".join(format_phenomena(report, run_dir.name)))
    return 0


def format_phenomena_diff(changes: list[Any], name_a: str, name_b: str, split: str) -> list[str]:
    lines = [
        _clip(f"grammar phenomena, A {name_a} vs B {name_b}: {split}"),
        "B - A in MCC with a paired 95% bootstrap interval: 'B better' or 'B worse'",
        "only where the interval leaves out 0, else 'unclear'.",
    ]
    for kind, title in (("major", "major features"), ("minor", "minor features")):
        lines += [
            "",
            title,
            f"  {'feature':<20} {'n':>5} {'MCC A':>6} {'MCC B':>6} {'B - A':>6}  {'95% interval':<16} verdict",
        ]
        for change in changes:
            if change.kind == kind:
                lines.append(
                    f"  {change.feature[:20]:<20} {change.n:>5} {change.mcc_a:>+6.3f} {change.mcc_b:>+6.3f} "
                    f"{change.delta:>+6.3f}  {_interval(change.delta_low, change.delta_high):<16} "
                    f"{change.verdict}"
                )
    return lines


def cmd_diff_map(args: argparse.Namespace) -> int:
    from workbench.core.base.layout import RunError
    from workbench.core.explore.cartography import training_map
    from workbench.core.explore.map_diff import compare_maps, format_map_diff

    folders = [_run_dir(args, name) for name in (args.run_a, args.run_b)]
    maps = [training_map(folder) for folder in folders]
    try:
        diff = compare_maps(maps[0], maps[1])
    except ValueError as err:
        raise RunError(f"{folders[0].name} and {folders[1].name}: {err}") from None
    if args.json:
        print(json_text(diff.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(format_map_diff(diff, args.limit)))
    return 0


def cmd_diff_phenomena(args: argparse.Namespace) -> int:
    from workbench.core.evaluation.phenomena import compare_phenomena, recorded_phenomena

    split = phenomena_split(args.split)  # diff's own default: holdout
    folders = [_run_dir(args, name) for name in (args.run_a, args.run_b)]
    reports = [recorded_phenomena(folder, split, _annotations(folder)) for folder in folders]
    try:
        changes = compare_phenomena(reports[0], reports[1])
    except ValueError as err:
        from workbench.core.base.layout import RunError

        raise RunError(f"{folders[0].name} and {folders[1].name}: {err}") from None
    if args.json:
        print(
            json_text(
                {
                    "a": folders[0].name,
                    "b": folders[1].name,
                    "split": split,
                    "features": [c.to_dict() for c in changes],
                },
                ensure_ascii=False,
            )
        )
    else:
        print("\n".join(format_phenomena_diff(changes, folders[0].name, folders[1].name, split)))
    return 0


# ---------------------------------------------------------------- the map of the training data


def format_map(training_map: Any, run: str, region: str | None, limit: int) -> list[str]:
    from workbench.core.explore.cartography import AMBIGUOUS_QUANTILE, HARD_CONFIDENCE

    table = training_map.table
    counts = training_map.counts()
    lines = [
        _clip(f"map of the training data: run {run}, {len(table)} sentences, {training_map.epochs_text()}"),
        "p(gold label) per epoch, from the training forward pass (dropout on)",
        "  "
        + "  ".join(f"{name} {counts[name]}" for name in counts)
        + (f"  not recorded {training_map.not_recorded}" if training_map.not_recorded else ""),
        f"  (ambiguous: variability >= its {AMBIGUOUS_QUANTILE:.0%} quantile, the most variable third;",
        f"   of the rest, hard: confidence < {HARD_CONFIDENCE}, easy: the others)",
    ]
    if training_map.caveat():
        lines.append(_clip("  " + training_map.caveat()))
    shown = table if region is None else training_map.region(region)
    if region == "easy":
        shown = shown.sort_values("confidence", ascending=False, kind="stable")
    elif region == "ambiguous":
        shown = shown.sort_values("variability", ascending=False, kind="stable")
    else:
        shown = shown.sort_values("confidence", kind="stable")
    more = f" (the first {limit} of {len(shown)})" if 0 < limit < len(shown) else ""
    lines += [
        "",
        f"{region or 'all'} sentences{more}, "
        + (
            "lowest confidence first"
            if region in (None, "hard")
            else "most variable first"
            if region == "ambiguous"
            else "highest confidence first"
        ),
        "   row  conf   var  right  label  region     sentence",
    ]
    for r in (shown.head(limit) if limit > 0 else shown).itertuples():
        figures = (
            f"{r.confidence:.2f}  {r.variability:.2f}  {r.correctness:>5.2f}" if r.epochs else f"{'not recorded':<17}"
        )  # a stopped run's sentence never reached: no NaN shown
        lines.append(_clip(f"{r.row:>6}  {figures}  {r.label:>5}  {r.region or '-':<9}  {r.sentence}"))
    return lines


def cmd_data_map(args: argparse.Namespace) -> int:
    from workbench.core.explore.cartography import training_map

    run_dir = _run_dir(args)
    mapped = training_map(run_dir)
    frame = mapped.table if args.region is None else mapped.region(args.region)
    if args.csv:
        export = frame.copy()
        for epoch in range(mapped.epochs):
            export[f"p_gold_epoch{epoch + 1}"] = mapped.dynamics.p_gold[epoch, export["row"].to_numpy()]
        export.to_csv(args.csv, index=False, float_format="%.4f")
        print(f"map: {len(export)} sentences written to {args.csv}", file=sys.stderr)
    if args.json:
        limited = frame if args.limit <= 0 else frame.sort_values("confidence", kind="stable").head(args.limit)
        print(
            json_text(
                {
                    "run": run_dir.name,
                    "epochs": mapped.epochs,
                    "sentences": len(mapped.table),
                    "regions": mapped.counts(),
                    "region": args.region,
                    "rows": mapped.to_records(limited),
                },
                ensure_ascii=False,
            )
        )
    elif not args.csv:
        print("\n".join(format_map(mapped, run_dir.name, args.region, args.limit)))
    return 0


# ---------------------------------------------------------------- minimal pairs


def format_pairs(report: Any, run: str, limit: int) -> list[str]:
    scored = report.n - report.not_separable
    lines = [
        _clip(f"minimal pairs: {report.path.name}, {report.n} pairs, run {run}, {report.max_length} tokens"),
        f"accuracy {report.accuracy:.3f} ({report.right} of {scored}): p(acceptable) of the good sentence higher",
    ]
    if report.not_separable:
        lines += textwrap.wrap(
            f"{report.not_separable} pairs not separable (both sentences the same tokens at "
            f"{report.max_length} tokens): neither right nor wrong, left out of the accuracy, "
            "listed at the end",
            WIDTH,
        )
    separate = bool(report.not_separable)
    for by, title in (("field", "per field"), ("paradigm", "per paradigm")):
        groups = report.groups(by)
        if not groups:
            continue
        lines += ["", f"{title:<40} {'n':>5} {'right':>6} {'accuracy':>9}" + (f" {'not sep.':>9}" if separate else "")]
        lines += [
            f"  {g.name[:38]:<38} {g.n:>5} {g.right:>6} {g.accuracy:>9.3f}"
            + (f" {g.not_separable:>9}" if separate else "")
            for g in groups
        ]
    failed = report.failed()
    if failed.empty:
        lines += ["", "no pair wrong"]
    else:
        shown = failed if limit <= 0 else failed.head(limit)
        more = f", the first {len(shown)}" if len(shown) < len(failed) else ""
        lines += ["", f"{len(failed)} pairs wrong (most wrong first{more}; [words] differ):"]
        for r in shown.itertuples():
            good, bad = report.words(r.Index)
            lines.append(_clip(f"  line {r.line}  {r.paradigm}  p_good {r.p_good:.3f}  p_bad {r.p_bad:.3f}"))
            lines += textwrap.wrap(
                "good: " + _marked(good), WIDTH - 2, initial_indent="    ", subsequent_indent="      "
            )
            lines += textwrap.wrap(
                "bad:  " + _marked(bad), WIDTH - 2, initial_indent="    ", subsequent_indent="      "
            )
    inseparable = report.inseparable()
    if len(inseparable):
        shown = inseparable if limit <= 0 else inseparable.head(limit)
        more = f", the first {len(shown)}" if len(shown) < len(inseparable) else ""
        lines += ["", f"{len(inseparable)} pairs not separable{more}:"]
        for r in shown.itertuples():
            lines.append(_clip(f"  line {r.line}  {r.paradigm}"))
            lines += textwrap.wrap(r.why_not, WIDTH - 2, initial_indent="    ", subsequent_indent="      ")
    return lines


def cmd_pairs(args: argparse.Namespace) -> int:
    from workbench.core.base.hardware import default_device
    from workbench.core.base.layout import model_folder
    from workbench.core.explore.pairs import load_suite, score_suite
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.core.runs.lookup import existing_run

    suite = load_suite(args.file)  # a bad file fails before the model loads
    folder = model_folder(existing_run(Path(args.runs), args.run))
    model = load_model(str(folder), allow_pickle=args.allow_pickle).to(default_device())
    report = score_suite(model, load_tokenizer(str(folder)), suite, batch_size=args.batch_size)
    name = folder.parent.name if folder.name == "model" else folder.name
    if args.json:
        print(json_text({"run": name, **report.to_dict(worst=args.limit)}, ensure_ascii=False))
    else:
        print("\n".join(format_pairs(report, name, args.limit)))
    return 0


# ---------------------------------------------------------------- registration


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `pairs` to the `workbench` subparsers SUB."""
    from workbench.core.explore.pairs import BATCH_SIZE

    pairs = sub.add_parser(
        "pairs",
        parents=[common],
        help="minimal pairs: is the good sentence scored higher?",
        description="Score a suite of minimal pairs: BLiMP JSON lines (sentence_good, "
        "sentence_bad, UID, field) or a TSV/CSV with good and bad columns (optional paradigm, "
        "field). Example: data/pairs/example.tsv",
    )
    pairs.add_argument("run", help="run id or folder (or a saved model folder)")
    pairs.add_argument("file", help="suite file (.jsonl, .tsv or .csv)")
    pairs.add_argument(
        "--limit", type=count_limit("wrong pairs"), default=10, help="wrong pairs to list (0: all; default 10)"
    )
    pairs.add_argument(
        "--batch-size",
        type=whole_number(1, 4096),
        default=BATCH_SIZE,
        help=f"sentences per forward pass (default {BATCH_SIZE})",
    )
    pairs.add_argument("--json", action="store_true")
    allow_pickle_flag(pairs)
    pairs.set_defaults(func=cmd_pairs)


def add_data_commands(data: Any, common: argparse.ArgumentParser) -> None:
    """Register `data map` on the `workbench data` subparsers DATA."""
    from workbench.core.explore.cartography import REGIONS

    mapped = data.add_parser(
        "map",
        parents=[common],
        help="a run's map of its training data (cartography)",
        description="Confidence (mean p(gold) over epochs), variability (its standard "
        "deviation) and correctness (share of epochs right) of every training sentence, "
        "recorded by training; regions easy, ambiguous and hard-to-learn.",
    )
    mapped.add_argument("run", help="run id or folder")
    mapped.add_argument("--region", choices=REGIONS, help="only this region")
    mapped.add_argument(
        "--limit", type=count_limit("sentences"), default=20, help="sentences to list (0: all; default 20)"
    )
    mapped.add_argument("--json", action="store_true")
    mapped.add_argument("--csv", metavar="FILE", help="write the map (with p(gold) per epoch) to FILE")
    mapped.set_defaults(func=cmd_data_map)
