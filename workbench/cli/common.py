"""What every command shares, in one place so the commands don't drift: the --model/--data/--runs
options, a --flag per TrainConfig setting, the help layout, the errors told in one line and the
exit statuses."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.base.config import DEFAULT_MODEL, TrainConfig, default_runs_dir, flag_fields, flag_name, parse_bool
from workbench.core.base.errors import EXIT_FAILED as EXIT_FAILED
from workbench.core.base.errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from workbench.core.base.errors import EXIT_USAGE as EXIT_USAGE
from workbench.core.base.errors import TrainingError
from workbench.core.base.layout import RunError, model_folder
from workbench.core.data.cola import DataError
from workbench.core.model.loading import ModelError
from workbench.core.model.predict import InputError
from workbench.core.runs.lookup import existing_run
from workbench.core.training.checkpoint import CheckpointError


class CliError(Exception):
    """A problem to report in one line, exit status EXIT_USAGE."""


# Errors that mean "this cannot be done as asked": `error: <message>` and EXIT_USAGE, no traceback.
# Their subclasses too (SweepError, GroupError and DiffError are RunErrors).
ONE_LINE_ERRORS: tuple[type[Exception], ...] = (
    CliError,
    CheckpointError,
    DataError,
    ModelError,
    RunError,
    TrainingError,
    InputError,
)


def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """FUNC's exit status; a known error told in one line (EXIT_USAGE), Ctrl-C as EXIT_INTERRUPTED."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `workbench data show | head`: the reader has all it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's last flush at exit must not fail again
        return 141  # what a shell reports for a command ended by SIGPIPE
    except ONE_LINE_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


# ---------------------------------------------------------------- help


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; help wrapped at spaces only (not inside 'cola-workbench[x]')."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def shown_default(value: Any) -> str:
    """A default as --help shows it: "" as "none", a bool as on/off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value != "" else "none"


# ---------------------------------------------------------------- options every command shares


def common_options(defaults: bool) -> argparse.ArgumentParser:
    """--model, --data and --runs. The top parser holds their DEFAULTS; a subcommand's copies have
    none (SUPPRESS), so `workbench --runs X open RUN` keeps the X given before the subcommand."""
    common = argparse.ArgumentParser(add_help=False)

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    common.add_argument(
        "--model",
        default=default(DEFAULT_MODEL),
        help="Hugging Face model id or local folder (default: the embedded all-MiniLM-L6-v2)",
    )
    common.add_argument(
        "--data",
        default=default(None),
        help="CoLA folder or zip contents, or a CSV/TSV file (default: the bundled data/cola)",
    )
    common.add_argument("--runs", default=default(str(default_runs_dir())), help="runs folder (default: ./runs)")
    return common


def allow_pickle_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also load weights from pickle files (pytorch_model.bin), which can run code: "
        "only for models you trust (default: safetensors only)",
    )


def no_notify_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    """--no-notify of the TUI (no command, or `open`); DEFAULT SUPPRESS on `open` keeps `--no-notify open`."""
    parser.add_argument(
        "--no-notify",
        action="store_true",
        default=default,
        help="no bell or desktop notification when a run ends (also: WORKBENCH_NOTIFY=0) (default: ring and notify)",
    )


def app_overrides_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    """--overrides of the TUI (no command, or `open`): where the review of labels writes its decisions; DEFAULT
    SUPPRESS on `open` keeps `workbench --overrides FILE open RUN`."""
    parser.add_argument(
        "--overrides",
        dest="app_overrides",
        metavar="FILE",
        default=default,
        help="the label-overrides file the app's review of labels (the training map's f, d, k keys) writes and "
        "the Train form offers (default: label-overrides.tsv in the runs folder)",
    )


def run_dir_of(args: argparse.Namespace) -> Path:
    """The folder of the run ARGS.run (an id in --runs, or a folder); an unknown run is an error that
    lists the runs (core `existing_run`)."""
    return existing_run(Path(args.runs), args.run)


def model_dir_of(args: argparse.Namespace) -> Path:
    """The model folder of ARGS.run: a run's model/, or a saved model folder given as is."""
    return model_folder(run_dir_of(args))


# ---------------------------------------------------------------- --json


def finite_json(value: Any) -> tuple[Any, dict[str, str]]:
    """VALUE with every NaN and infinity (Python or numpy) as None, and where each was: {"a.b[2]": "NaN"}."""
    import math

    found: dict[str, str] = {}

    def clean(item: Any, where: str) -> Any:
        if isinstance(item, dict):
            return {key: clean(inner, f"{where}.{key}" if where else str(key)) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(inner, f"{where}[{index}]") for index, inner in enumerate(item)]
        if (
            isinstance(item, float)
            or type(item).__module__ == "numpy"
            and hasattr(item, "dtype")
            and item.dtype.kind == "f"
        ):
            number = float(item)
            if not math.isfinite(number):
                found[where] = "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
                return None
            return number
        return item

    return clean(value, ""), found


def json_text(value: Any, **options: Any) -> str:
    """VALUE as strict JSON (what every --json prints): NaN and infinities written as null, and a
    `non_finite` entry naming each one's place and what it was, for an object; never the bare NaN that
    Python's json writes and strict parsers refuse."""
    import json

    cleaned, found = finite_json(value)
    if found and isinstance(cleaned, dict):
        cleaned["non_finite"] = {where: f"{what}, written as null" for where, what in found.items()}
    return json.dumps(cleaned, allow_nan=False, **options)


# ---------------------------------------------------------------- numeric options, checked as they are read


def whole_number(low: int, high: int | None = None, meaning: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from LOW to HIGH (no upper end when None). Anything else is refused as
    the option is read: argparse's one line (exit EXIT_USAGE) names the option and the range, and MEANING
    (what an edge value means, e.g. "0: all")."""
    span = f"between {low} and {high}" if high is not None else f"at least {low}"
    said = f"{span} ({meaning})" if meaning else span

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; must be {said}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {said}, not {value}")
        return value

    parse.__name__ = "whole number"
    parse.range = (low, high)  # type: ignore[attr-defined]  # for the test that walks every option
    return parse


def count_limit(what: str) -> Callable[[str], int]:
    """--limit: how many WHAT to list, 0 for all."""
    return whole_number(0, None, f"0: all the {what}")


def seeds_text(text: str) -> str:
    """--seeds N,N,...: checked as it is read (core.search.groups.parse_seeds), kept as written."""
    from workbench.core.search.groups import GroupError, parse_seeds

    try:
        parse_seeds(text)
    except GroupError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix(f"--seeds {text!r}: ")) from None
    return text


# ---------------------------------------------------------------- TrainConfig as flags

METAVARS = {"report_to": "NAMES", "overrides": "FILE", "subset_map": "RUN", "subset_regions": "NAMES"}


def _on_off(text: str) -> bool:
    try:
        return parse_bool(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_config_flags(parser: argparse.ArgumentParser, config_class: type[TrainConfig] = TrainConfig) -> None:
    """A --flag per TrainConfig flag setting (config.flag_fields), with the setting's help and its one
    default (from core/config.py); `train` and `sweep` both take them.

    Every flag defaults to None, so that config_from_args takes only the flags given."""
    defaults = config_class()
    for f in flag_fields(config_class):
        default = getattr(defaults, f.name)
        flag = flag_name(f.name, config_class)
        sentence = str(f.metadata.get("help", "")).rstrip(".")
        if sentence.split()[0][1:].islower():  # "Passes over..." reads "passes over..." like the other flags' help
            sentence = sentence[0].lower() + sentence[1:]
        text = f"{sentence} (default: {shown_default(default)})"
        if isinstance(default, bool):  # --flag on|off / --no-flag; type=bool would read "False" as True
            parser.add_argument(
                flag,
                dest=f.name,
                type=_on_off,
                nargs="?",
                const=True,
                default=None,
                metavar="on|off",
                help=f"{sentence}; --no-{flag[2:]} is {flag} off (default: {shown_default(default)})",
            )
            parser.add_argument(
                f"--no-{flag[2:]}", dest=f.name, action="store_false", default=None, help=argparse.SUPPRESS
            )
        else:
            choices = f.metadata.get("choices")
            metavar = None if choices else METAVARS.get(f.name) or {int: "N", float: "X"}.get(type(default), "TEXT")
            kind = (
                _checked_setting(config_class, f.name, type(default))
                if isinstance(default, (int, float))
                else type(default)
            )
            parser.add_argument(flag, dest=f.name, type=kind, default=None, choices=choices, metavar=metavar, help=text)


def _checked_setting(config_class: type[TrainConfig], name: str, kind: type) -> Callable[[str], Any]:
    """An argparse type for the numeric setting NAME: read as KIND, then checked by TrainConfig.validate() (the
    one owner of each setting's range) as it is read, so that nonsense is refused before any work starts."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        problem = config_class(**{name: value}).validate().get(name)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, not {text}")
        return value

    parse.__name__ = kind.__name__
    parse.setting = name  # type: ignore[attr-defined]  # for the test that walks every option
    return parse


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings given as flags on the command line, by name."""
    return {f.name: getattr(args, f.name) for f in flag_fields() if getattr(args, f.name, None) is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config of --model, --data and the setting flags given; the rest at their defaults."""
    return TrainConfig(model=args.model, data=args.data or "", **given_settings(args))


def problems_text(problems: dict[str, str]) -> str:
    """TrainConfig.validate()'s problems in one line, each under its flag's name."""
    return "; ".join(f"{flag_name(name)}: {problem}" for name, problem in problems.items())


def print_group(summary: Any) -> None:
    """A seed group's summary (core.groups.GroupSummary), as `runs` and `train --seeds` show it."""
    print("\n".join(summary.lines()))
