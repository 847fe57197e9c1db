"""`workbench sweep`, `workbench sweep show` and `workbench train --seeds`: thin faces over
core/sweep.py and core/groups.py, registered into cli.py's parser by `add_commands`."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig

EXIT_INTERRUPTED = 130


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `sweep` and `sweep show` to SUB, and `--seeds` to its `train` command."""
    from workbench.cli import _allow_pickle_flag, add_config_flags
    from workbench.core.search.sweep import DEFAULT_STUDY

    sweep = sub.add_parser(
        "sweep", parents=[common], help="search a recipe with Optuna; every trial is a run",
        description="Search training settings with Optuna (TPE, median pruning on per-epoch validation MCC; "
        "the objective is the best validation MCC, never the holdout). Every trial is an ordinary run "
        "<study>-t<number>. Any train setting given here is held fixed. Run the same command on other "
        "machines with a shared --storage URL to sweep one study together.")
    sweep.add_argument("--trials", type=int, default=10, help="trials to run in this process (default: 10)")
    sweep.add_argument("--study", default=DEFAULT_STUDY, help=f"study name (default: {DEFAULT_STUDY})")
    sweep.add_argument("--storage", default=None,
                       help="Optuna storage URL; a postgresql:// or mysql:// URL shared by several machines joins "
                       "the same study (default: sqlite:///RUNS/sweeps.db)")
    sweep.add_argument("--space", default=None, metavar="FILE",
                       help="search space, .json or .toml (default: the built-in space)")
    sweep.add_argument("--no-pruning", action="store_true",
                       help="run every trial to its last epoch (default: prune trials that fall behind)")
    sweep.add_argument("--keep-checkpoints", action="store_true",
                       help="keep each trial's checkpoint/ (default: only its model/ stays)")
    add_config_flags(sweep)
    _allow_pickle_flag(sweep)
    sweep.set_defaults(func=cmd_sweep)
    actions = sweep.add_subparsers(dest="sweep_command", metavar="{show}")
    show = actions.add_parser("show", parents=[common], help="best trial, parameter importances, top trials")
    show.add_argument("--study", default=None, help="study name (default: the storage's only study, or sweep)")
    show.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///RUNS/sweeps.db)")
    show.add_argument("--top", type=int, default=5, help="how many of the best trials to list (default: 5)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_sweep_show)

    soup = sub.add_parser(
        "soup", parents=[common], help="average several runs' weights into one model (a new run)",
        description="Average the fine-tuned weights of RUN... (a seed group trained with one --head-seed) into "
        "one model, written as a new run NAME: calibrated on validation and evaluated like a trained run. "
        "Uniform by default; --greedy adds members best on validation first, keeping each only if the "
        "soup's validation MCC does not drop (Wortsman et al. 2022).")
    soup.add_argument("members", nargs="+", metavar="RUN", help="run ids or folders (at least two)")
    soup.add_argument("--name", required=True, help="the soup's run id")
    soup.add_argument("--greedy", action="store_true", help="greedy soup (default: uniform)")
    soup.set_defaults(func=cmd_soup)

    train = sub.choices.get("train")
    if train is not None:
        train.add_argument("--seeds", default=None, metavar="N,N,...",
                           help="train one run per seed (runs NAME-s<seed>) and summarise them as group NAME "
                           "(default: one run, seeded by --seed)")
        plain = train.get_default("func")

        def train_or_seeds(args: argparse.Namespace) -> int:
            return cmd_train_seeds(args) if getattr(args, "seeds", None) else int(plain(args) or 0)

        train.set_defaults(func=train_or_seeds)


def fixed_settings(args: argparse.Namespace) -> list[str]:
    """The TrainConfig settings given on the command line."""
    from workbench.cli import NOT_FLAGS

    return [f.name for f in fields(TrainConfig) if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None]


# ---------------------------------------------------------------- soup

def cmd_soup(args: argparse.Namespace) -> int:
    from workbench.core.search.soup import make_soup

    result = make_soup(Path(args.runs), args.members, args.name, greedy=args.greedy,
                       progress=lambda text: print(text, file=sys.stderr, flush=True))
    print("\n".join(result.lines()))
    return 0


# ---------------------------------------------------------------- sweep

def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.cli import Progress, config_from_args
    from workbench.core.search.sweep import (
        SweepError,
        TrialEnd,
        TrialStart,
        default_pruner,
        default_space,
        default_storage,
        load_space,
        run_sweep,
        short_value,
    )

    config = config_from_args(args)
    problems = config.validate()
    if problems:
        raise SweepError("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in problems.items()))
    fixed = fixed_settings(args)
    if args.space:
        space = load_space(args.space, config)
        both = [name for name in space.names if name in fixed]
        if both:
            raise SweepError(f"{args.space}: {both[0]} is searched there and held fixed by "
                             f"--{both[0].replace('_', '-')}; drop one of them")
    else:
        space = default_space(config).without(fixed)
    runs_dir = Path(args.runs)
    storage = args.storage or default_storage(runs_dir)
    progress: list[Any] = [Progress()]
    started: list[int] = []

    def on_trial(event: TrialStart | TrialEnd) -> None:
        if isinstance(event, TrialStart):
            if not started:  # not before: a problem found before the first trial stays one line
                started.append(event.number)
                print(f"study {args.study} in {_shown(storage)}: {args.trials} trial(s) over "
                      f"{', '.join(space.names)}", file=sys.stderr, flush=True)
            progress[0] = Progress()
            values = "  ".join(f"{k}={short_value(v)}" for k, v in event.params.items())
            print(f"trial {event.number} ({event.run}): {values}", file=sys.stderr, flush=True)
            return
        progress[0].close()
        value = f", best validation MCC {event.value:.3f}" if event.value is not None else ""
        note = f": {event.error}" if event.error else ""
        print(f"trial {event.number} {event.state} after {event.epochs_done} epoch(s){value}{note}",
              file=sys.stderr, flush=True)

    stop = threading.Event()
    from workbench.cli import interruptible

    with interruptible(stop, "the sweep"):
        outcome = run_sweep(config, args.trials, study_name=args.study, storage=storage, space=space,
                            runs_dir=runs_dir, on_event=lambda e: progress[0](e), stop=stop, on_trial=on_trial,
                            pruner=_no_pruner() if args.no_pruning else default_pruner(),
                            keep_checkpoints=args.keep_checkpoints, allow_pickle=args.allow_pickle)
    progress[0].close()
    print_summary(args.study, storage, top=5)
    if outcome.stopped:
        print("sweep stopped; run the same command again to go on with more trials", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _no_pruner() -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def _shown(storage: str) -> str:
    from workbench.core.search.sweep import safe_url

    return safe_url(storage)


def cmd_sweep_show(args: argparse.Namespace) -> int:
    from workbench.core.search.sweep import default_storage, sweep_summary

    storage = args.storage or default_storage(Path(args.runs))
    if args.json:
        print(json.dumps(sweep_summary(args.study, storage, top=args.top).to_dict(), indent=2, default=str))
        return 0
    print_summary(args.study, storage, top=args.top)
    return 0


def print_summary(study: str | None, storage: str, top: int = 5) -> None:
    from workbench.core.search.sweep import sweep_summary

    print("\n".join(sweep_summary(study, storage, top=top).lines()))


# ---------------------------------------------------------------- train --seeds

def cmd_train_seeds(args: argparse.Namespace) -> int:
    """`workbench train --seeds 42,43,44`: one run per seed, summarised as a group."""
    from workbench.cli import Progress, config_from_args
    from workbench.core.base.layout import check_run_name, new_run_id
    from workbench.core.search.groups import GroupError, parse_seeds, train_seeds

    seeds = parse_seeds(args.seeds)
    if args.resume or args.detach:
        raise GroupError("--seeds trains new runs in this terminal: it takes neither --resume nor --detach "
                         "(resume a stopped member as any run)")
    if args.seed is not None:
        raise GroupError("--seed and --seeds: give one of them")
    config = config_from_args(args)
    problems = config.validate()
    if problems:
        raise GroupError("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in problems.items()))
    runs_dir = Path(args.runs)
    name = check_run_name(args.name) if args.name else new_run_id(runs_dir)
    stop = threading.Event()
    progress = Progress()

    def on_event(event: Any) -> None:
        if event["kind"] == "start":
            print(f"run: {runs_dir / event['run']} (seed group {name})", file=sys.stderr, flush=True)
        progress(event)

    from workbench.cli import interruptible

    with interruptible(stop, "this seed's training"):
        summary = train_seeds(config, seeds, runs_dir, name, on_event=on_event, stop=stop,
                              allow_pickle=args.allow_pickle)
    progress.close()
    print_group(summary)
    if stop.is_set():
        return EXIT_INTERRUPTED
    return 0


def print_group(summary: Any) -> None:
    print("\n".join(summary.lines()))
