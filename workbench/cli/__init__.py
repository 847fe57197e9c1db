"""`workbench`: the TUI with no arguments, the whole pipeline headless with a subcommand.

Each command group registers its own subcommands (train.py, runs.py, data.py, explore.py,
sweep.py, learned.py); what they share (options, errors, exit statuses) is in common.py."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from workbench.cli import data, explore, learned, runs, sweep, train
from workbench.cli.common import (
    EXIT_USAGE,
    HelpFormatter,
    app_overrides_flag,
    common_options,
    no_notify_flag,
    run_command,
)

MAIN_EXAMPLES = """examples:
  workbench                                   open the terminal workbench
  workbench train --epochs 3                  fine-tune the embedded model into runs/<id>/
  workbench runs                              list runs, their status and MCC
  workbench eval <run> --split in_domain_dev  score a run
  workbench predict <run> "The cat sat."      classify a sentence
  workbench COMMAND --help                    a command's settings
"""
COMMAND_GROUPS = (data, train, runs, sweep, explore, learned)  # in the order `workbench --help` lists them


class WholeNames(argparse.ArgumentParser):
    """Options by their whole names only: with argparse's prefix matching, `workbench --runs DIR --run NAME`
    read `--run` as `--runs` and opened a runs folder called NAME. Sub-commands' parsers are of this class
    too (argparse makes them of the parent's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """A usage error in one line, as every other error is told (common.run_command), exit EXIT_USAGE."""
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


class VersionAction(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked (importing importlib.metadata
    at every start would cost tens of milliseconds)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"{parser.prog} {version('cola-workbench')}")
        except PackageNotFoundError:
            print(f"{parser.prog}: version unknown (not installed; pip install -e . records it)")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = WholeNames(
        prog="workbench",
        parents=[common_options(defaults=True)],
        description="Fine-tune BERT-style encoders on CoLA. With no command, opens the terminal workbench.",
        epilog=MAIN_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    no_notify_flag(parser, False)
    app_overrides_flag(parser, None)
    parser.add_argument("--version", action=VersionAction, help="print the version and exit (default: off)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options(defaults=False)
    for group in COMMAND_GROUPS:
        group.register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    takes_sentences = isinstance(getattr(args, "sentences", None), list)  # predict, explain, neighbors
    if extra and takes_sentences and not any(e.startswith("-") for e in extra):
        args.sentences = [*args.sentences, *extra]  # sentences given after the flags
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return run_command(getattr(args, "func", runs.cmd_tui), args)  # no command: the terminal workbench
