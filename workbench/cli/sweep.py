"""`workbench sweep` and `workbench sweep show`: a thin face over core/sweep.py."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    EXIT_INTERRUPTED,
    add_config_flags,
    allow_pickle_flag,
    config_from_args,
    given_settings,
    json_text,
    problems_text,
    whole_number,
)
from workbench.cli.progress import Progress, interruptible
from workbench.core.search.space import DEFAULT_STUDY, SweepError, default_space, load_space
from workbench.core.search.storage import default_storage, safe_url
from workbench.core.search.summary import short_value, sweep_summary
from workbench.core.search.sweep import TrialEnd, TrialStart, default_pruner, run_sweep


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `sweep`, `sweep show` and `soup` to SUBPARSERS."""
    sweep = subparsers.add_parser(
        "sweep",
        parents=[common],
        help="search a recipe with Optuna; every trial is a run",
        description="Search training settings with Optuna (TPE, median pruning on per-epoch validation MCC; "
        "the objective is the best validation MCC, never the holdout). Every trial is an ordinary run "
        "<study>-t<number>. Any train setting given here is held fixed. Run the same command on other "
        "machines with a shared --storage URL to sweep one study together.",
    )
    sweep.add_argument(
        "--trials", type=whole_number(1, 100_000), default=10, help="trials to run in this process (default: 10)"
    )
    sweep.add_argument("--study", default=DEFAULT_STUDY, help=f"study name (default: {DEFAULT_STUDY})")
    sweep.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL; a postgresql:// or mysql:// URL shared by several machines joins "
        "the same study (default: sqlite:///RUNS/sweeps.db)",
    )
    sweep.add_argument(
        "--space", default=None, metavar="FILE", help="search space, .json or .toml (default: the built-in space)"
    )
    sweep.add_argument(
        "--no-pruning",
        action="store_true",
        help="run every trial to its last epoch (default: prune trials that fall behind)",
    )
    sweep.add_argument(
        "--keep-checkpoints", action="store_true", help="keep each trial's checkpoint/ (default: only its model/ stays)"
    )
    add_config_flags(sweep)
    allow_pickle_flag(sweep)
    sweep.set_defaults(func=cmd_sweep)
    actions = sweep.add_subparsers(dest="sweep_command", metavar="{show}")
    show = actions.add_parser("show", parents=[common], help="best trial, parameter importances, top trials")
    show.add_argument("--study", default=None, help="study name (default: the storage's only study, or sweep)")
    show.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///RUNS/sweeps.db)")
    show.add_argument("--top", type=whole_number(0), default=5, help="how many of the best trials to list (default: 5)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_sweep_show)

    soup = subparsers.add_parser(
        "soup",
        parents=[common],
        help="average several runs' weights into one model (a new run)",
        description="Average the fine-tuned weights of RUN... (a seed group trained with one --head-seed) into "
        "one model, written as a new run NAME: calibrated on validation and evaluated like a trained run. "
        "Uniform by default; --greedy adds members best on validation first, keeping each only if the "
        "soup's validation MCC does not drop (Wortsman et al. 2022).",
    )
    soup.add_argument("members", nargs="+", metavar="RUN", help="run ids or folders (at least two)")
    soup.add_argument("--name", required=True, help="the soup's run id")
    soup.add_argument("--greedy", action="store_true", help="greedy soup (default: uniform)")
    soup.set_defaults(func=cmd_soup)


# ---------------------------------------------------------------- soup


def cmd_soup(args: argparse.Namespace) -> int:
    from workbench.core.runs.lookup import existing_run
    from workbench.core.search.soup import make_soup

    for member in args.members:
        existing_run(Path(args.runs), member)  # an unknown member is an error that lists the runs
    result = make_soup(
        Path(args.runs),
        args.members,
        args.name,
        greedy=args.greedy,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print("\n".join(result.lines()))
    return 0


# ---------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    problems = config.validate()
    if problems:
        raise SweepError(problems_text(problems))
    fixed = list(given_settings(args))  # held fixed: the space does not search them
    if args.space:
        space = load_space(args.space, config)
        both = [name for name in space.names if name in fixed]
        if both:
            raise SweepError(
                f"{args.space}: {both[0]} is searched there and held fixed by "
                f"--{both[0].replace('_', '-')}; drop one of them"
            )
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
                print(
                    f"study {args.study} in {safe_url(storage)}: {args.trials} trial(s) over {', '.join(space.names)}",
                    file=sys.stderr,
                    flush=True,
                )
            progress[0] = Progress()
            values = "  ".join(f"{k}={short_value(v)}" for k, v in event.params.items())
            print(f"trial {event.number} ({event.run}): {values}", file=sys.stderr, flush=True)
            return
        progress[0].close()
        value = f", best validation MCC {event.value:.3f}" if event.value is not None else ""
        note = f": {event.error}" if event.error else ""
        print(
            f"trial {event.number} {event.state} after {event.epochs_done} epoch(s){value}{note}",
            file=sys.stderr,
            flush=True,
        )

    stop = threading.Event()
    with interruptible(stop, "the sweep"):
        outcome = run_sweep(
            config,
            args.trials,
            study_name=args.study,
            storage=storage,
            space=space,
            runs_dir=runs_dir,
            on_event=lambda e: progress[0](e),
            stop=stop,
            on_trial=on_trial,
            pruner=_no_pruner() if args.no_pruning else default_pruner(),
            keep_checkpoints=args.keep_checkpoints,
            allow_pickle=args.allow_pickle,
        )
    progress[0].close()
    print_summary(args.study, storage, top=5)
    if outcome.stopped:
        print("sweep stopped; run the same command again to go on with more trials", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _no_pruner() -> Any:
    import optuna  # slow to import: only when a sweep runs, not for `workbench --help`

    return optuna.pruners.NopPruner()


def cmd_sweep_show(args: argparse.Namespace) -> int:
    storage = args.storage or default_storage(Path(args.runs))
    if args.json:
        print(json_text(sweep_summary(args.study, storage, top=args.top).to_dict(), indent=2, default=str))
        return 0
    print_summary(args.study, storage, top=args.top)
    return 0


def print_summary(study: str | None, storage: str, top: int = 5) -> None:
    print("\n".join(sweep_summary(study, storage, top=top).lines()))
