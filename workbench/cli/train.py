"""`workbench train`: fine-tune into RUNS/<id>/ in this terminal, in the background (--detach), on
several processes (torchrun, accelerate launch), or once per seed as a group (--seeds)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    CliError,
    HelpFormatter,
    add_config_flags,
    allow_pickle_flag,
    config_from_args,
    print_group,
    problems_text,
    seeds_text,
)
from workbench.cli.progress import Progress, interruptible
from workbench.core.base.config import TrainConfig, default_runs_dir
from workbench.core.base.events import Event
from workbench.core.base.layout import check_run_name, is_run_folder, new_run_id
from workbench.core.runs.lookup import existing_run
from workbench.core.runs.status import launch_training, visible_gpus
from workbench.core.search.groups import GroupError, parse_seeds, train_seeds
from workbench.core.training.train import train

TRAIN_EXAMPLES = """examples:
  workbench train                                     the default recipe on the bundled CoLA
  workbench train --epochs 1 --train-limit 256        a quick try
  workbench train --name base --learning-rate 5e-5 --patience 2
  workbench train --model bert-base-uncased --precision bf16 --report-to tensorboard
  workbench train --detach --name long                train in the background; then:
  workbench attach long                               follow it (Ctrl-C detaches)
  workbench train --resume long                       continue a stopped run
  workbench train --overrides label-overrides.tsv     flip and drop training labels as the file decides
  workbench train --map base --regions ambiguous --fraction 0.5
                                                      train on the more ambiguous half of base's ambiguous region
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `train` to SUBPARSERS."""
    train_cmd = subparsers.add_parser(
        "train",
        parents=[common],
        help="fine-tune into runs/<id>/",
        description="Fine-tune a model on CoLA into RUNS/<id>/: its config, metrics, checkpoint,\nbest model and "
        "final scores. Ctrl-C stops at the next batch with a checkpoint.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    train_cmd.add_argument("--name", help="run id (default: a timestamp)")
    train_cmd.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped run from its checkpoint, with its saved settings (default: a new run)",
    )
    train_cmd.add_argument(
        "--detach",
        action="store_true",
        help="train in a background process that outlives the terminal; follow with `attach` "
        "(default: train in this terminal)",
    )
    train_cmd.add_argument(
        "--seeds",
        type=seeds_text,
        default=None,
        metavar="N,N,...",
        help="train one run per seed (runs NAME-s<seed>) and summarise them as group NAME "
        "(default: one run, seeded by --seed)",
    )
    train_cmd.add_argument("--launch-config", help=argparse.SUPPRESS)  # a detached launch's config (JSON)
    add_config_flags(train_cmd)
    allow_pickle_flag(train_cmd)
    train_cmd.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    if args.seeds:
        return cmd_train_seeds(args)
    runs_dir = Path(args.runs)
    if args.resume:
        run_dir = existing_run(runs_dir, args.resume)
        if not is_run_folder(run_dir):
            raise CliError(f"{run_dir}: no such run to resume (not trained yet)")
        config = TrainConfig.load(run_dir / "config.json")
    else:
        config = config_from_args(args) if not args.launch_config else _launched_config(Path(args.launch_config))
        config = with_map_folder(config, runs_dir)
        problems = config.validate()
        if problems:
            raise CliError(problems_text(problems))
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
        result = train(
            config,
            run_dir,
            on_event=on_event if speaks else None,
            stop=stop,
            resume=bool(args.resume),
            allow_pickle=args.allow_pickle,
        )
    if not speaks:
        return {"stopped": EXIT_INTERRUPTED, "failed": EXIT_FAILED}.get(result.status, 0)
    if result.status == "stopped":
        print(
            f"stopped at {result.stopped_at()}; checkpoint saved. Continue with:\n"
            f"  workbench train --resume {run_dir.name}" + _runs_flag(args),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if result.status == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"best epoch {result.best_epoch}: validation MCC {result.best_val_mcc:.3f}")
    if result.final:
        print(f"in_domain_dev MCC {result.final['in_domain_dev_mcc']:.3f}")
        print(
            f"holdout (out_of_domain_dev) MCC {result.final['holdout_mcc']:.3f}, "
            f"accuracy {result.final['holdout_accuracy']:.3f}"
        )
        if result.final.get("holdout_warning"):
            print(result.final["holdout_warning"], file=sys.stderr)
    print(f"model: {run_dir / 'model'}")
    return 0


def with_map_folder(config: TrainConfig, runs_dir: Path) -> TrainConfig:
    """CONFIG with --map RUN as the run's folder, RUN looked up in RUNS_DIR (an unknown run lists the runs, exit 2),
    so that every check and every member of a group finds the same map."""
    import dataclasses

    name = config.subset_map.strip()
    if not name or is_run_folder(Path(name)):
        return config
    folder = existing_run(runs_dir, name)
    if not is_run_folder(folder):
        raise CliError(f"--map {name}: {folder} has not trained yet, so it has no map")
    return dataclasses.replace(config, subset_map=str(folder))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _runs_flag(args: argparse.Namespace) -> str:
    """` --runs X` to repeat in a suggested command, when X is not the default."""
    return "" if Path(args.runs) == default_runs_dir() else f" --runs {args.runs}"


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
    pid = launch_training(config, run_dir, allow_pickle=args.allow_pickle, processes=max(1, visible_gpus()))
    print(f"run {run_dir.name} training in the background (pid {pid}); log: {run_dir / 'train.log'}")
    print(f"  follow: workbench attach {run_dir.name}{_runs_flag(args)}")
    print(f"  stop:   workbench stop {run_dir.name}{_runs_flag(args)}")
    return 0


# ---------------------------------------------------------------- train --seeds


def cmd_train_seeds(args: argparse.Namespace) -> int:
    """`workbench train --seeds 42,43,44`: one run per seed, summarised as a group."""
    seeds = parse_seeds(args.seeds)
    if args.resume or args.detach:
        raise GroupError(
            "--seeds trains new runs in this terminal: it takes neither --resume nor --detach "
            "(resume a stopped member as any run)"
        )
    if args.seed is not None:
        raise GroupError("--seed and --seeds: give one of them")
    runs_dir = Path(args.runs)
    config = with_map_folder(config_from_args(args), runs_dir)
    problems = config.validate()
    if problems:
        raise GroupError(problems_text(problems))
    name = check_run_name(args.name) if args.name else new_run_id(runs_dir)
    stop = threading.Event()
    progress = Progress()

    def on_event(event: Any) -> None:
        if event["kind"] == "start":
            print(f"run: {runs_dir / event['run']} (seed group {name})", file=sys.stderr, flush=True)
        progress(event)

    with interruptible(stop, "this seed's training"):
        summary = train_seeds(
            config, seeds, runs_dir, name, on_event=on_event, stop=stop, allow_pickle=args.allow_pickle
        )
    progress.close()
    print_group(summary)
    if stop.is_set():
        return EXIT_INTERRUPTED
    return 0
