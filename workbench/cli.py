"""`workbench`: the TUI with no arguments, the whole pipeline headless with a subcommand."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from workbench import cli_explore
from workbench.cli_sweep import add_commands as add_sweep_commands
from workbench.core.base.config import COLA_URL, DEFAULT_MODEL, TrainConfig, default_runs_dir
from workbench.core.base.events import EndEvent, Event, StartEvent, StepEvent
from workbench.core.data.cola import SPLIT_NAMES

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# TrainConfig fields that get no --flag of their own in `train`
NOT_FLAGS = {"model", "data", "extra"}


class CliError(Exception):
    """A problem to report in one line, exit status 2."""


def _error_types() -> tuple[type[BaseException], ...]:
    from workbench.core.base.errors import TrainingError
    from workbench.core.base.layout import RunError
    from workbench.core.data.cola import DataError
    from workbench.core.model.loading import ModelError
    from workbench.core.model.predict import InputError
    from workbench.core.training.checkpoint import CheckpointError

    return (CliError, CheckpointError, DataError, ModelError, RunError, TrainingError, InputError)


# ---------------------------------------------------------------- data

def cmd_data_fetch(args: argparse.Namespace) -> int:
    from workbench.core.data.cola import fetch

    counts = fetch(args.source, args.to)
    for name, rows in counts.items():
        print(f"{name}: {rows} sentences")
    print(f"CoLA ready in {args.to or 'data/cola'}")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from workbench.core.data.cola import describe, load_cola, token_lengths
    from workbench.core.model.loading import load_tokenizer

    cola = load_cola(args.data)
    frame = cola[args.split]
    tokenizer = load_tokenizer(args.model)
    stats = describe(frame, token_lengths(tokenizer, frame["sentence"].tolist()))
    print(f"{args.split} ({cola.folder}): {stats['rows']} sentences")
    print(f"  acceptable   {stats['acceptable']:>6}  ({stats['acceptable_share']:.1%})")
    print(f"  unacceptable {stats['unacceptable']:>6}  ({1 - stats['acceptable_share']:.1%})")
    lengths = stats["token_lengths"]
    print(f"  tokens: mean {lengths['mean']:.1f}, p50 {lengths['p50']}, p90 {lengths['p90']}, "
          f"p99 {lengths['p99']}, max {lengths['max']}")
    print("  sources: " + ", ".join(f"{k} {v}" for k, v in stats["sources"].items()))
    print("samples:")
    for row in frame.sample(n=min(args.samples, len(frame)), random_state=0).itertuples():
        print(f"  {row.label}  {row.source:<6} {row.sentence}")
    return 0


def cmd_data_tokenize(args: argparse.Namespace) -> int:
    from workbench.core.model.loading import load_tokenizer, tokenize

    tokenizer = load_tokenizer(args.model)
    pairs = tokenize(tokenizer, args.sentence, max_length=args.max_length)
    print(" ".join(token for token, _ in pairs))
    print(" ".join(str(token_id) for _, token_id in pairs))
    return 0


# ---------------------------------------------------------------- model

def cmd_model_show(args: argparse.Namespace) -> int:
    from workbench.core.model.loading import load_model, summarize

    summary = summarize(load_model(args.model, allow_pickle=args.allow_pickle), args.model)
    width = max(len(k) for k, _ in summary.rows())
    for key, value in summary.rows():
        print(f"{key:<{width}}  {value}")
    return 0


# ---------------------------------------------------------------- train

class Progress:
    """A tqdm bar on a terminal, plain lines when piped."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar: Any = None
        self.every = 50

    def __call__(self, event: Event) -> None:
        if event["kind"] == "start":
            self._start(event)
        elif event["kind"] == "step":
            self._step(event)
        elif event["kind"] == "epoch":
            self.close()
            mark = "  (best)" if event["best"] else ""
            self._line(f"epoch {event['epoch']}: train loss {event['train_loss']:.4f}  val loss "
                       f"{event['val_loss']:.4f}  val acc {event['val_accuracy']:.3f}  val MCC "
                       f"{event['val_mcc']:.3f}{mark}")
        elif event["kind"] == "log":
            self._line(event["message"])
        elif event["kind"] == "end":
            self.close()

    def _start(self, event: StartEvent) -> None:
        resumed = f", resumed at step {event['resumed_at_step']}" if event.get("resumed_at_step") else ""
        self._line(f"training {event['model']} on {event['device']} ({event['precision']}), "
                   f"{event['train_sentences']} sentences, {event['epochs']} epochs x "
                   f"{event['steps_per_epoch']} steps{resumed}")
        self.every = max(1, event["steps_per_epoch"] // 10)

    def _step(self, event: StepEvent) -> None:
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=event["steps_per_epoch"], initial=event["epoch_step"] - 1,
                                desc=f"epoch {event['epoch']}", file=self.stream, leave=False,
                                dynamic_ncols=True)
            self.bar.update(1)
            self.bar.set_postfix_str(f"loss {event['loss']:.4f} lr {event['lr']:.2e} "
                                     f"{event['sentences_per_s']:.0f} sent/s ETA {_clock(event['eta_s'])}",
                                     refresh=False)
        elif event["epoch_step"] % self.every == 0 or event["epoch_step"] == event["steps_per_epoch"]:
            self._line(f"epoch {event['epoch']} step {event['epoch_step']}/{event['steps_per_epoch']}  "
                       f"loss {event['loss']:.4f}  lr {event['lr']:.2e}  "
                       f"{event['sentences_per_s']:.0f} sent/s  ETA {_clock(event['eta_s'])}")

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {"model": args.model, "data": args.data or ""}
    for f in fields(TrainConfig):
        if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return TrainConfig(**values)


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.core.base.layout import check_run_name, new_run_id, run_path
    from workbench.core.training.train import train

    runs_dir = Path(args.runs)
    if args.resume:
        run_dir = run_path(runs_dir, args.resume)
        if not (run_dir / "config.json").is_file():
            raise CliError(f"{run_dir}: no such run to resume")
        config = TrainConfig.load(run_dir / "config.json")
    else:
        config = config_from_args(args) if not args.launch_config else _launched_config(Path(args.launch_config))
        problems = config.validate()
        if problems:
            raise CliError("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in problems.items()))
        if not args.name and _world_size() > 1:
            raise CliError("--name is required when several processes train together (accelerate launch, torchrun)")
        run_dir = runs_dir / (check_run_name(args.name) if args.name else new_run_id(runs_dir))
    if args.detach:
        return detach(args, None if args.resume else config, run_dir)
    stop = threading.Event()
    progress = Progress()
    speaks = _rank() == 0  # several processes (torchrun, accelerate launch): only the main one prints

    def on_event(event: Event) -> None:
        if event["kind"] == "start":  # not before: a problem found before training stays one line
            print(f"run: {run_dir}", file=sys.stderr, flush=True)
        progress(event)

    with interruptible(stop, "the training"):
        result = train(config, run_dir, on_event=on_event if speaks else None, stop=stop,
                       resume=bool(args.resume), allow_pickle=args.allow_pickle)
    if not speaks:
        return {"stopped": EXIT_INTERRUPTED, "failed": 1}.get(result.status, 0)
    if result.status == "stopped":
        print(f"stopped at epoch {result.epochs_done}; checkpoint saved. Continue with:\n"
              f"  workbench train --resume {run_dir.name}" + _runs_flag(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.status == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    print(f"best epoch {result.best_epoch}: validation MCC {result.best_val_mcc:.3f}")
    if result.final:
        print(f"in_domain_dev MCC {result.final['in_domain_dev_mcc']:.3f}")
        print(f"holdout (out_of_domain_dev) MCC {result.final['holdout_mcc']:.3f}, "
              f"accuracy {result.final['holdout_accuracy']:.3f}")
    print(f"model: {run_dir / 'model'}")
    return 0


@contextmanager
def interruptible(stop: threading.Event, what: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) sets STOP once; a second Ctrl-C abandons at once."""
    presses = {"count": 0}

    def on_signal(signum: int, frame: Any) -> None:
        presses["count"] += 1
        if presses["count"] > 1:
            raise KeyboardInterrupt
        stop.set()
        print(f"\nstopping {what} at the next batch, saving a checkpoint (Ctrl-C again to abandon it)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_signal)
    previous_term = signal.signal(signal.SIGTERM, on_signal) if hasattr(signal, "SIGTERM") else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def _world_size() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _launched_config(path: Path) -> TrainConfig:
    """The config a detached launch left for this process (`core.runs.launch_training`)."""
    try:
        config = TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise CliError(f"{path}: cannot read the launch config ({err})") from None
    path.unlink(missing_ok=True)
    return config


def detach(args: argparse.Namespace, config: TrainConfig | None, run_dir: Path) -> int:
    """Start the same training (or resume, CONFIG None) as its own process, in its own session, so
    that it outlives this terminal and SSH connection; its output goes to RUN/train.log."""
    from workbench.core.runs.status import launch_training

    pid = launch_training(config, run_dir, allow_pickle=args.allow_pickle)
    print(f"run {run_dir.name} training in the background (pid {pid}); log: {run_dir / 'train.log'}")
    print(f"  follow: workbench attach {run_dir.name}{_runs_flag(args)}")
    print(f"  stop:   workbench stop {run_dir.name}{_runs_flag(args)}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    """Replay a run's events, then follow them live until it ends (Ctrl-C detaches)."""
    from workbench.core.base.layout import run_path
    from workbench.core.runs.metrics import follow_run, last_end

    run_dir = run_path(Path(args.runs), args.run)
    if not (run_dir / "config.json").is_file():
        raise CliError(f"{run_dir}: no such run")
    progress = Progress()
    ended: EndEvent | None = None
    try:
        for batch in follow_run(run_dir):
            for event in batch:
                progress(event)
            if any(event["kind"] == "start" for event in batch):
                ended = None
            ended = last_end(batch) or ended
    except KeyboardInterrupt:
        progress.close()
        print("\ndetached; the run goes on", file=sys.stderr)
        return 0
    progress.close()
    if ended is not None and ended["status"] == "done":
        holdout = ended.get("holdout_mcc")
        print(f"{run_dir.name}: done, best validation MCC {ended.get('best_val_mcc', 0):.3f}"
              + (f", holdout MCC {holdout:.3f}" if holdout is not None else ""))
        return 0
    if ended is not None and ended["status"] == "stopped":
        print(f"{run_dir.name}: stopped; resume with workbench train --resume {run_dir.name}")
        return 0
    error = ended.get("error") if ended is not None else None
    print(f"{run_dir.name}: failed: {error or 'the process ended without a final event'}")
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    from workbench.core.base.layout import run_path
    from workbench.core.runs.status import stop_run

    run_dir = run_path(Path(args.runs), args.run)
    stop_run(run_dir)
    print(f"{run_dir.name}: asked to stop at the next batch (a checkpoint is written first)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run's metrics as CSV: one row per step and per epoch event."""
    from workbench.core.base.layout import run_path
    from workbench.core.runs.metrics import export_metrics_csv

    run_dir = run_path(Path(args.runs), args.run)
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            export_metrics_csv(run_dir, out)
    else:
        export_metrics_csv(run_dir, sys.stdout)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Configs side by side (differing fields only) and validation MCC per epoch."""
    from workbench.core.base.layout import run_path
    from workbench.core.runs.compare import compare_runs

    comparison = compare_runs([run_path(Path(args.runs), name) for name in args.runs_to_compare])
    ids = [info.id for info in comparison.runs]
    width = max([len(i) for i in ids] + [10])
    print(f"{'setting':<20} " + " ".join(f"{i:>{width}}" for i in ids))
    if not comparison.differing:
        print("(same configuration)")
    for label, cells in comparison.rows():
        print(f"{label:<20} " + " ".join(f"{cell:>{width}}" for cell in cells))
    return 0


def _runs_flag(args: argparse.Namespace) -> str:
    return "" if Path(args.runs) == default_runs_dir() else f" --runs {args.runs}"


# ---------------------------------------------------------------- eval, predict, runs

def _model_folder(args: argparse.Namespace) -> Path:
    from workbench.core.base.layout import model_folder, run_path

    return model_folder(run_path(Path(args.runs), args.run))


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a run on a split of the data it was trained on, split as in its training (or on --data)."""
    from workbench.core.evaluation.evaluate import evaluate_frame, record_report
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.core.runs.lookup import load_run_data

    model_dir = _model_folder(args)
    run_dir = model_dir.parent if model_dir.name == "model" else None
    cola = load_run_data(run_dir, args.data)
    if args.data and Path(args.data).is_file():
        name, frame = Path(args.data).stem, cola["holdout"]
    else:
        name, frame = args.split, cola[args.split]
    model = load_model(str(model_dir), allow_pickle=args.allow_pickle)
    report = evaluate_frame(model, load_tokenizer(str(model_dir)), frame, name)
    if args.json:
        summary = report.summary()
        if args.slices:
            summary["slices"] = _slices(report, model_dir).to_dict()
        print(json.dumps({name: summary}, indent=2))
    else:
        print_report(report)
        if args.slices:
            cli_explore.print_slices(report, load_tokenizer(str(model_dir)))
    if run_dir is not None:
        target = record_report(run_dir, report)
        print(f"predictions: {target}", file=sys.stderr)
    if report.single_class:
        print(report.warning(), file=sys.stderr)
    return 0


def _slices(report: Any, model_dir: Path) -> Any:
    from workbench.core.data.cola import token_lengths
    from workbench.core.evaluation.slices import compute_slices
    from workbench.core.model.loading import load_tokenizer

    frame = report.predictions
    lengths = token_lengths(load_tokenizer(str(model_dir)), frame["sentence"].tolist())
    return compute_slices(frame["label"].to_numpy(), frame["p_acceptable"].to_numpy(), lengths)


def print_report(report: Any) -> None:
    (tn, fp), (fn, tp) = report.confusion
    print(f"{report.name}: {report.n} sentences")
    print(f"  MCC      {report.mcc:.3f}")
    if report.threshold != 0.5:  # a calibrated model: its argmax is p(acceptable) >= threshold
        print(f"  (at its calibrated threshold {report.threshold:.3f}; MCC at 0.5 {report.mcc_at_half:.3f})")
    print(f"  accuracy {report.accuracy:.3f}")
    print("  confusion (rows true, columns predicted)")
    print("                 unacceptable  acceptable")
    print(f"    unacceptable {tn:>12}  {fp:>10}")
    print(f"    acceptable   {fn:>12}  {tp:>10}")
    print("  per source      n     MCC   accuracy")
    for row in report.per_source:
        print(f"    {row['source']:<8} {row['n']:>5}  {row['mcc']:>6.3f}  {row['accuracy']:>8.3f}")


def cmd_predict(args: argparse.Namespace) -> int:
    from workbench.core.model.predict import InputError, Predictor

    sentences = args.sentences or [line for line in _read_stdin().splitlines() if line.strip()]
    if not sentences:
        raise CliError("no sentences: pass them as arguments or one per line on stdin")
    predictor = Predictor.load(_model_folder(args), allow_pickle=args.allow_pickle)
    status = 0
    for result in predictor.predict_many(sentences):  # in batches of similar length
        if isinstance(result, InputError):
            print(f"error: {result}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            probs = result.probabilities
            note = f"  (truncated to {result.tokens} tokens)" if result.truncated else ""
            print(f"{result.label:<12}  p(acceptable) {probs['acceptable']:.3f}  "
                  f"p(unacceptable) {probs['unacceptable']:.3f}  {result.sentence}{note}")
    return status


def _read_stdin() -> str:
    """Standard input as text; bytes that are not UTF-8 become U+FFFD instead of a traceback."""
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read().decode("utf-8", errors="replace") if buffer is not None else sys.stdin.read()


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.core.runs.status import list_runs

    runs = list_runs(Path(args.runs))
    if not runs:
        print(f"no runs in {args.runs}")
        return 0
    print(f"{'run':<22} {'status':<8} {'started':<19} {'epochs':>6} {'best val MCC':>12} {'holdout MCC':>11}")
    for info in runs:
        best = f"{info.best_val_mcc:.3f}" if info.best_val_mcc is not None else "-"
        holdout = f"{info.holdout_mcc:.3f}" if info.holdout_mcc is not None else "-"
        print(f"{info.id:<22} {info.status:<8} {info.started:<19} {info.epochs_done:>3}/{info.epochs:<2} "
              f"{best:>12} {holdout:>11}")
        if info.status == "failed" and info.error:
            print(f"{'':<22} {info.error}")
    from workbench.cli_sweep import print_group
    from workbench.core.search.groups import group_summary, list_groups

    for group in list_groups(Path(args.runs)):
        print()
        print_group(group_summary(Path(args.runs), group))
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from workbench.tui.app import make_app

    app = make_app(model=args.model, data=args.data, runs_dir=Path(args.runs), run=getattr(args, "run", None),
                   notify=False if getattr(args, "no_notify", False) else None)
    app.run()
    return int(app.return_code or 0)


# ---------------------------------------------------------------- parser

def _allow_pickle_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-pickle", action="store_true",
                        help="also load weights from pickle files (pytorch_model.bin), which can run code: "
                        "only for models you trust (default: safetensors only)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; help wrapped at spaces only (not inside 'cola-workbench[x]')."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _shown(value: Any) -> str:
    """A default as --help shows it: "" as "none", a bool as on/off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value != "" else "none"


def _on_off(text: str) -> bool:
    from workbench.core.base.config import parse_bool

    try:
        return parse_bool(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _config_flags(parser: argparse.ArgumentParser, config_class: type[TrainConfig] = TrainConfig) -> None:
    """A --flag per TrainConfig setting, with the setting's help and its one default (from core/config.py).

    Every flag defaults to None, so that config_from_args takes only the flags given."""
    defaults = config_class()
    for f in fields(config_class):
        if f.name in NOT_FLAGS:
            continue
        default = getattr(defaults, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        sentence = str(f.metadata.get("help", "")).rstrip(".")
        if sentence.split()[0][1:].islower():  # "Passes over..." reads "passes over..." like the other flags' help
            sentence = sentence[0].lower() + sentence[1:]
        text = f"{sentence} (default: {_shown(default)})"
        if isinstance(default, bool):  # --flag on|off / --no-flag; type=bool would read "False" as True
            parser.add_argument(flag, type=_on_off, nargs="?", const=True, default=None, metavar="on|off",
                                help=f"{sentence}; --no-{flag[2:]} is {flag} off (default: {_shown(default)})")
            parser.add_argument(f"--no-{flag[2:]}", dest=f.name, action="store_false", default=None,
                                help=argparse.SUPPRESS)
        else:
            choices = f.metadata.get("choices")
            metavar = None if choices else METAVARS.get(f.name) or {int: "N", float: "X"}.get(type(default), "TEXT")
            parser.add_argument(flag, type=type(default), default=None, choices=choices, metavar=metavar,
                                help=text)


add_config_flags = _config_flags  # the sweep command's flags are train's

METAVARS = {"report_to": "NAMES"}
MAIN_EXAMPLES = """examples:
  workbench                                   open the terminal workbench
  workbench train --epochs 3                  fine-tune the embedded model into runs/<id>/
  workbench runs                              list runs, their status and MCC
  workbench eval <run> --split in_domain_dev  score a run
  workbench predict <run> "The cat sat."      classify a sentence
  workbench COMMAND --help                    a command's settings
"""
TRAIN_EXAMPLES = """examples:
  workbench train                                     the default recipe on the bundled CoLA
  workbench train --epochs 1 --train-limit 256        a quick try
  workbench train --name base --learning-rate 5e-5 --patience 2
  workbench train --model bert-base-uncased --precision bf16 --report-to tensorboard
  workbench train --detach --name long                train in the background; then:
  workbench attach long                               follow it (Ctrl-C detaches)
  workbench train --resume long                       continue a stopped run
"""
EVAL_EXAMPLES = """examples:
  workbench eval <run>                        the holdout (out_of_domain_dev) of the run's data
  workbench eval <run> --split validation     the run's own validation split
  workbench eval <run> --data sentences.tsv   a file of labelled sentences
  workbench eval <run> --json                 the report as JSON
  workbench eval <run> --slices               where it fails: length, calibration, threshold
"""


def common_options(defaults: bool) -> argparse.ArgumentParser:
    """--model, --data and --runs. The top parser holds their DEFAULTS; a subcommand's copies have
    none (SUPPRESS), so `workbench --runs X open RUN` keeps the X given before the subcommand."""
    common = argparse.ArgumentParser(add_help=False)

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    common.add_argument("--model", default=default(DEFAULT_MODEL),
                        help="Hugging Face model id or local folder (default: the embedded all-MiniLM-L6-v2)")
    common.add_argument("--data", default=default(None), help="CoLA folder or zip contents, or a CSV/TSV file "
                        "(default: the bundled data/cola)")
    common.add_argument("--runs", default=default(str(default_runs_dir())), help="runs folder (default: ./runs)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options(defaults=False)
    parser = argparse.ArgumentParser(prog="workbench", parents=[common_options(defaults=True)],
                                     description="Fine-tune BERT-style encoders on CoLA. "
                                     "With no command, opens the terminal workbench.",
                                     epilog=MAIN_EXAMPLES, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    open_cmd = sub.add_parser("open", parents=[common], help="open the workbench on a run")
    open_cmd.add_argument("run")
    for tui_parser, default in ((parser, False), (open_cmd, argparse.SUPPRESS)):  # SUPPRESS: keeps `--no-notify open`
        tui_parser.add_argument("--no-notify", action="store_true", default=default,
                                help="no bell or desktop notification when a run ends (also: WORKBENCH_NOTIFY=0) "
                                "(default: ring and notify)")
    open_cmd.set_defaults(func=cmd_tui)

    data = sub.add_parser("data", help="fetch, show and tokenize data").add_subparsers(dest="data_command",
                                                                                       required=True)
    fetch = data.add_parser("fetch", help="get the CoLA release (official URL, a zip or a folder)")
    fetch.add_argument("--from", dest="source", default=COLA_URL, help=f"URL, zip or folder (default {COLA_URL})")
    fetch.add_argument("--to", default=None, help="destination folder (default: the bundled data/cola)")
    fetch.set_defaults(func=cmd_data_fetch)
    show = data.add_parser("show", parents=[common], help="rows, labels, sources, token lengths, samples")
    show.add_argument("--split", choices=SPLIT_NAMES, default="train")
    show.add_argument("--samples", type=int, default=5)
    show.set_defaults(func=cmd_data_show)
    tok = data.add_parser("tokenize", parents=[common], help="WordPiece tokens and ids of a sentence")
    tok.add_argument("sentence")
    tok.add_argument("--max-length", type=int, default=128)
    tok.set_defaults(func=cmd_data_tokenize)

    model = sub.add_parser("model", help="model information").add_subparsers(dest="model_command", required=True)
    model_show = model.add_parser("show", parents=[common], help="print the model's configuration")
    _allow_pickle_flag(model_show)
    model_show.set_defaults(func=cmd_model_show)

    train = sub.add_parser("train", parents=[common], help="fine-tune into runs/<id>/",
                           description="Fine-tune a model on CoLA into RUNS/<id>/: its config, metrics, "
                           "checkpoint,\nbest model and final scores. Ctrl-C stops at the next batch with a "
                           "checkpoint.",
                           epilog=TRAIN_EXAMPLES, formatter_class=HelpFormatter)
    train.add_argument("--name", help="run id (default: a timestamp)")
    train.add_argument("--resume", metavar="RUN", help="continue a stopped run from its checkpoint, with its "
                       "saved settings (default: a new run)")
    train.add_argument("--detach", action="store_true",
                       help="train in a background process that outlives the terminal; follow with `attach` "
                       "(default: train in this terminal)")
    train.add_argument("--launch-config", help=argparse.SUPPRESS)  # a detached launch's config (JSON)
    _config_flags(train)
    _allow_pickle_flag(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", parents=[common], help="MCC, accuracy, confusion, per source",
                              description="Score a run's best model on a split of the data it was trained on, "
                              "split as in\nits training (or on --data); the report and predictions are kept in "
                              "the run folder.",
                              epilog=EVAL_EXAMPLES, formatter_class=HelpFormatter)
    evaluate.add_argument("run", help="run id or folder (or a saved model folder)")
    evaluate.add_argument("--split", choices=SPLIT_NAMES, default="holdout",
                          help="which split to score; holdout is out_of_domain_dev (default: holdout)")
    evaluate.add_argument("--slices", action="store_true",
                          help="also where it fails: by sentence length, a reliability diagram with its "
                          "calibration error, MCC against the decision threshold (default: off)")
    evaluate.add_argument("--json", action="store_true",
                          help="print the report as JSON (default: a table)")
    _allow_pickle_flag(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    predict = sub.add_parser("predict", parents=[common], help="classify sentences (arguments or stdin)")
    predict.add_argument("run", help="run id or folder (or a saved model folder)")
    predict.add_argument("sentences", nargs="*")
    predict.add_argument("--json", action="store_true")
    _allow_pickle_flag(predict)
    predict.set_defaults(func=cmd_predict)

    runs = sub.add_parser("runs", parents=[common], help="list runs")
    runs.set_defaults(func=cmd_runs)

    attach = sub.add_parser("attach", parents=[common], help="follow a running or finished run's progress")
    attach.add_argument("run")
    attach.set_defaults(func=cmd_attach)
    stop = sub.add_parser("stop", parents=[common], help="stop a running run at its next batch, with a checkpoint")
    stop.add_argument("run")
    stop.set_defaults(func=cmd_stop)
    export = sub.add_parser("export", parents=[common], help="a run's metrics as CSV")
    export.add_argument("run")
    export.add_argument("--out", help="CSV file (default: standard output)")
    export.set_defaults(func=cmd_export)
    compare = sub.add_parser("compare", parents=[common], help="configs and validation MCC of runs side by side")
    compare.add_argument("runs_to_compare", nargs="+", metavar="RUN")
    compare.set_defaults(func=cmd_compare)
    add_sweep_commands(sub, common)  # `sweep`, `sweep show` and `train --seeds` (cli_sweep.py)
    cli_explore.add_commands(sub, common)  # explain, diff, neighbors
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = argv
    takes_sentences = getattr(args, "func", None) in (cmd_predict, cli_explore.cmd_explain, cli_explore.cmd_neighbors)
    if extra and takes_sentences and not any(e.startswith("-") for e in extra):
        args.sentences = [*args.sentences, *extra]  # sentences given after the flags
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func = getattr(args, "func", cmd_tui)
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if isinstance(err, _error_types()):
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
