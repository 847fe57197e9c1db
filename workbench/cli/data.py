"""`workbench data fetch|show|tokenize|issues` and `workbench model show`: the data and the model before
training, and the training split's likely label errors."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.cli import learned
from workbench.cli.common import (
    EXIT_INTERRUPTED,
    CliError,
    HelpFormatter,
    allow_pickle_flag,
    count_limit,
    json_text,
    whole_number,
)
from workbench.core.base.config import COLA_URL
from workbench.core.data.cola import SPLIT_NAMES, describe, fetch, load_cola, token_lengths
from workbench.core.model.loading import load_model, load_word_pieces, summarize, tokenize


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `data` (fetch, show, tokenize) and `model` (show) to SUBPARSERS."""
    data = subparsers.add_parser("data", help="fetch, show and tokenize data").add_subparsers(
        dest="data_command", required=True
    )
    learned.add_data_commands(data, common)  # data map
    fetch_cmd = data.add_parser("fetch", help="get the CoLA release (official URL, a zip or a folder)")
    fetch_cmd.add_argument("--from", dest="source", default=COLA_URL, help=f"URL, zip or folder (default {COLA_URL})")
    fetch_cmd.add_argument("--to", default=None, help="destination folder (default: the bundled data/cola)")
    fetch_cmd.set_defaults(func=cmd_data_fetch)
    show = data.add_parser("show", parents=[common], help="rows, labels, sources, token lengths, samples")
    show.add_argument("--split", choices=SPLIT_NAMES, default="train")
    show.add_argument("--samples", type=whole_number(0), default=5, help="sentences to show (default 5)")
    show.set_defaults(func=cmd_data_show)
    tok = data.add_parser("tokenize", parents=[common], help="WordPiece tokens and ids of a sentence")
    tok.add_argument("sentence")
    tok.add_argument("--max-length", type=whole_number(3, 8192), default=128)
    tok.set_defaults(func=cmd_data_tokenize)
    add_issues_command(data, common)

    model = subparsers.add_parser("model", help="model information").add_subparsers(dest="model_command", required=True)
    model_show = model.add_parser("show", parents=[common], help="print the model's configuration")
    allow_pickle_flag(model_show)
    model_show.set_defaults(func=cmd_model_show)


def cmd_data_fetch(args: argparse.Namespace) -> int:
    counts = fetch(args.source, args.to)
    for name, rows in counts.items():
        print(f"{name}: {rows} sentences")
    print(f"CoLA ready in {args.to or 'data/cola'}")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    cola = load_cola(args.data)
    frame = cola[args.split]
    tokenizer = load_word_pieces(args.model)  # no torch, no transformers: a second instead of five
    stats = describe(frame, token_lengths(tokenizer, frame["sentence"].tolist()))
    print(f"{args.split} ({cola.folder}): {stats['rows']} sentences")
    print(f"  acceptable   {stats['acceptable']:>6}  ({stats['acceptable_share']:.1%})")
    print(f"  unacceptable {stats['unacceptable']:>6}  ({1 - stats['acceptable_share']:.1%})")
    lengths = stats["token_lengths"]
    print(
        f"  tokens: mean {lengths['mean']:.1f}, p50 {lengths['p50']}, p90 {lengths['p90']}, "
        f"p99 {lengths['p99']}, max {lengths['max']}"
    )
    print("  sources: " + ", ".join(f"{k} {v}" for k, v in stats["sources"].items()))
    print("samples:")
    for row in frame.sample(n=min(args.samples, len(frame)), random_state=0).itertuples():
        print(f"  {row.label}  {row.source:<6} {row.sentence}")
    return 0


def cmd_data_tokenize(args: argparse.Namespace) -> int:
    tokenizer = load_word_pieces(args.model)
    pairs = tokenize(tokenizer, args.sentence, max_length=args.max_length)
    print(" ".join(token for token, _ in pairs))
    print(" ".join(str(token_id) for _, token_id in pairs))
    return 0


def cmd_model_show(args: argparse.Namespace) -> int:
    summary = summarize(load_model(args.model, allow_pickle=args.allow_pickle), args.model)
    width = max(len(k) for k, _ in summary.rows())
    for key, value in summary.rows():
        print(f"{key:<{width}}  {value}")
    return 0


# ---------------------------------------------------------------- data issues

ISSUES_NAME = "label-issues"  # the default fold group: the same command again continues it
ISSUES_WIDTH = 80
ISSUES_DESCRIPTION = """\
Likely label errors in the training split, by confident learning (cleanlab):
every training sentence's p(given label) from a model that never saw it, by K
short fine-tunes, each on the training split minus one fold (stratified by
label, seeded), predicting that fold. The folds are ordinary runs NAME-f1 ...
NAME-fK under the group NAME in the runs folder. The same command again
continues the job where it stopped (finished folds are not retrained); once
every fold is done it ranks again at no cost. The issues go to
RUNS/NAME/label_issues.tsv and .json, each with the region (easy, ambiguous,
hard) and confidence of the same sentence in a run's map of the training data
(--run), and how far the two methods agree.

Cost: a fold fine-tunes for --epochs on (K-1)/K of the training split, then
predicts the rest. Measured on a 2-core AMD EPYC with nothing else running, a
fold of the default (3 epochs over 6,156 sentences, then 1,539 predictions)
takes 73 to 170 s by the machine, so the default 5 folds take 6 to 15
minutes; the cost grows with EPOCHS x (K-1). Ctrl-C stops at the
next batch, with a checkpoint."""

ISSUES_EXAMPLES = """examples:
  workbench data issues                      5 folds of 3 epochs, the newest map
  workbench data issues --run base --top 50  run base's map; 50 issues listed
  workbench data issues --folds 3 --name k3  3 folds: faster, each on less
  workbench data issues --json --top 0       every issue as JSON
"""


def add_issues_command(data: Any, common: argparse.ArgumentParser) -> None:
    """Register `data issues` on the `workbench data` subparsers DATA."""
    from workbench.core.search.out_of_fold import DEFAULT_EPOCHS, DEFAULT_FOLDS

    issues = data.add_parser(
        "issues",
        parents=[common],
        help="likely label errors in the training split (cleanlab, K fine-tunes)",
        description=ISSUES_DESCRIPTION,
        epilog=ISSUES_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    issues.add_argument(
        "--folds",
        type=whole_number(2, 20),
        default=DEFAULT_FOLDS,
        metavar="K",
        help=f"fine-tunes, each predicting the fold it left out (default: {DEFAULT_FOLDS})",
    )
    issues.add_argument(
        "--epochs",
        type=whole_number(1, 100),
        default=DEFAULT_EPOCHS,
        help=f"epochs of each fold's fine-tune (default: {DEFAULT_EPOCHS})",
    )
    issues.add_argument(
        "--seed",
        type=whole_number(0, 2**32 - 1),
        default=42,
        help="seed of the fold assignment and of each fold's training (default: 42)",
    )
    issues.add_argument(
        "--name", default=ISSUES_NAME, help=f"the fold group: a folder in the runs folder (default: {ISSUES_NAME})"
    )
    issues.add_argument(
        "--run",
        help="the run whose map of the training data is set beside each issue (default: the newest "
        "finished run that has one, fold runs left out)",
    )
    issues.add_argument(
        "--no-map", action="store_true", help="rank the issues without a map beside them (default: off)"
    )
    issues.add_argument(
        "--top", type=count_limit("issues"), default=20, help="issues to list, also in the JSON (0: all; default: 20)"
    )
    issues.add_argument("--json", action="store_true", help="print JSON instead of the table (default: off)")
    allow_pickle_flag(issues)
    issues.set_defaults(func=cmd_data_issues)


def _issues_map(args: argparse.Namespace) -> Any:
    """The map set beside the issues: --run's, else the newest finished run's that has one; None with --no-map.
    Asked before any training, so that a missing map is said at once."""
    from workbench.core.explore.cartography import training_map
    from workbench.core.explore.label_issues import newest_mapped_run
    from workbench.core.runs.lookup import existing_run

    if args.no_map:
        if args.run:
            raise CliError("--run and --no-map: give one of them")
        return None
    if args.run:
        return training_map(existing_run(Path(args.runs), args.run))
    newest = newest_mapped_run(Path(args.runs))
    if newest is None:
        raise CliError(
            f"no finished run with a map of its training data in {args.runs} to set beside the issues: "
            "train one (workbench train), name one with --run RUN, or rank without a map (--no-map)"
        )
    return training_map(newest)


def _fold_line(event: Any) -> str:
    where = f"fold {event['fold']}/{event['folds']} (run {event['run']})"
    if event["state"] == "start":
        return f"{where}: training on {event['train_sentences']} sentences, {event['held_out']} held out"
    if event["state"] == "resume":
        return f"{where}: resuming its training from the checkpoint"
    if event["state"] == "predict":
        return f"{where}: predicting its {event['held_out']} held-out sentences"
    if event["state"] == "kept":
        return f"{where}: done before, kept"
    return f"{where}: done"


def format_issues(report: Any, folder: Path, top: int) -> list[str]:
    """The issues as a table at most ISSUES_WIDTH columns wide, the agreement with the map above it."""
    lines = [
        learned._clip(
            f"label issues: group {report.group}, {report.sentences} training sentences, {report.folds} folds: "
            f"{len(report.issues)} issues",
            ISSUES_WIDTH,
        ),
        "cleanlab's confident learning on out-of-fold p(given label), lowest first",
        learned._clip(f"saved in {folder}", ISSUES_WIDTH),
    ]
    if report.agreement is not None:
        lines += [""] + [learned._clip(line, ISSUES_WIDTH) for line in report.agreement.lines()]
        if report.agreement.mapped == 0:
            lines.append("  (the map has none of these sentences: another data file, or other lines)")
    else:
        lines.append("no map beside the issues (--no-map)")
    shown = report.issues if top <= 0 else report.issues[:top]
    more = f", the first {len(shown)}" if len(shown) < len(report.issues) else ""
    lines += ["", f"issues{more}:", " rank   line label p(label) region     conf  sentence"]
    for issue in shown:
        confidence = f"{issue.map_confidence:.2f}" if issue.map_confidence is not None else "   -"
        lines.append(
            learned._clip(
                f"{issue.rank:>5} {issue.line:>6} {issue.label:>5} {issue.p_label:>8.3f} {issue.region or '-':<9} "
                f"{confidence:>5}  {issue.sentence}",
                ISSUES_WIDTH,
            )
        )
    return lines


def cmd_data_issues(args: argparse.Namespace) -> int:
    from workbench.cli.progress import Progress, interruptible
    from workbench.core.base.config import TrainConfig
    from workbench.core.base.layout import check_run_name
    from workbench.core.explore.label_issues import label_issues, save_report
    from workbench.core.search.out_of_fold import out_of_fold_probabilities

    name = check_run_name(args.name)
    config = TrainConfig(model=args.model, data=args.data or "", epochs=args.epochs, seed=args.seed)
    training_map = _issues_map(args)
    stop = threading.Event()
    progress = Progress()

    def on_event(event: Any) -> None:
        if event["kind"] == "fold":
            progress.close()
            print(_fold_line(event), file=sys.stderr, flush=True)
        else:
            progress(event)

    with interruptible(stop, "this fold's training"):
        job = out_of_fold_probabilities(
            config, args.folds, Path(args.runs), name, on_event=on_event, stop=stop, allow_pickle=args.allow_pickle
        )
    progress.close()
    if job.status == "stopped":
        print(
            f"stopped in fold {job.stopped_fold} of {job.folds}; its checkpoint and the finished folds are kept. "
            "Run the same command again to continue.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    report = label_issues(job.table, name, job.folds, training_map)
    save_report(report, job.path)
    if args.json:
        document = report.to_dict()
        if args.top > 0:
            document["issues"] = document["issues"][: args.top]
        print(json_text({**document, "saved": str(job.path / "label_issues.tsv")}, ensure_ascii=False))
    else:
        print("\n".join(format_issues(report, job.path, args.top)))
    return 0
