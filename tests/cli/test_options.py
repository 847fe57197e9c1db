"""Every numeric option of every command is checked as it is read: 0, -1 and a huge value are either
meaningful (and taken) or refused with exit 2 and one line naming the option and its range."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from workbench.cli import build_parser, main

HUGE = str(10**12)
VALUES = ("0", "-1", HUGE)

# What each TrainConfig setting (a flag of `train` and of `sweep`) takes of 0, -1 and HUGE; every other
# value there is nonsense.
SETTINGS = {
    "epochs": (),
    "batch_size": ("0",),
    "max_length": (),
    "learning_rate": (),
    "layer_lr_decay": (),
    "weight_decay": ("0",),
    "warmup_ratio": ("0",),
    "adam_epsilon": (),
    "max_grad_norm": (HUGE,),
    "seed": ("0",),
    "split_seed": ("0",),
    "validation_fraction": (),
    "patience": ("0", HUGE),
    "train_limit": ("0", HUGE),
    "eval_batch_size": (HUGE,),
    "checkpoint_every": ("0", HUGE),
    "checkpoint_minutes": ("0",),
    "dropout": ("0",),
    "reinit_top_layers": ("0",),
    "head_lr_multiplier": (),
    "ema_decay": ("0",),
    "head_seed": ("0", "-1"),
    "subset_fraction": (),
}
# The other commands' numeric options: (command..., option) -> what it takes of 0, -1 and HUGE.
OPTIONS = {
    ("data", "show", "--samples"): ("0", HUGE),
    ("data", "tokenize", "--max-length"): (),
    ("data", "map", "--limit"): ("0", HUGE),
    ("data", "issues", "--folds"): (),
    ("data", "issues", "--epochs"): (),
    ("data", "issues", "--seed"): ("0",),
    ("data", "issues", "--top"): ("0", HUGE),
    ("explain", "--steps"): (),
    ("explain", "--max-length"): (),
    ("diff", "--limit"): ("0", HUGE),
    ("neighbors", "--k"): (),
    ("pairs", "--limit"): ("0", HUGE),
    ("pairs", "--batch-size"): (),
    ("sweep", "--trials"): (),
    ("sweep", "show", "--top"): ("0", HUGE),
    ("train", "--seeds"): ("0",),
}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


def positionals(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for PARSER's positional arguments (never read: the options fail first or parse)."""
    values: list[str] = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        values += {None: ["x"], "+": ["x", "y"]}.get(action.nargs, [])  # type: ignore[call-overload]
    return values


def numeric_options() -> dict[tuple[str, ...], tuple[argparse.ArgumentParser, argparse.Action]]:
    """(command..., option) -> (its parser, its action), for every option that reads numbers."""
    found = {}
    for path, sub in commands(build_parser()):
        for action in sub._actions:
            if not action.option_strings or action.type is None:
                continue
            if (
                action.type in (int, float)
                or hasattr(action.type, "range")
                or hasattr(action.type, "setting")
                or action.dest == "seeds"
            ):
                found[(*path, action.option_strings[0])] = (sub, action)
    return found


def expected(key: tuple[str, ...], action: argparse.Action) -> tuple[str, ...]:
    setting = getattr(action.type, "setting", None)
    return SETTINGS[setting] if setting else OPTIONS.get(key, ())


def test_every_numeric_option_is_checked_and_in_the_tables() -> None:
    found = numeric_options()
    unchecked = [" ".join(key) for key, (_, action) in found.items() if action.type in (int, float)]
    assert unchecked == [], "read as a bare int or float, never checked"
    settings = {getattr(action.type, "setting", None) for _, action in found.values()} - {None}
    assert settings == set(SETTINGS)
    assert {key for key, (_, action) in found.items() if not hasattr(action.type, "setting")} == set(OPTIONS)
    assert {key[0] for key, (_, action) in found.items() if hasattr(action.type, "setting")} == {"train", "sweep"}


@pytest.mark.parametrize("key", sorted(numeric_options()), ids=" ".join)
def test_zero_minus_one_and_huge_are_taken_or_refused_in_one_line(
    key: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    sub, action = numeric_options()[key]
    *path, option = key
    for value in VALUES:
        argv = [*path, *positionals(sub), option, value]
        if value in expected(key, action):
            build_parser().parse_args(argv)  # taken: no error
            continue
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(argv)
        assert exit_info.value.code == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"error: argument {option}: ") and "must be" in err, err
        assert err.rstrip().endswith(f"(see workbench {' '.join(path)} --help)"), err


def test_pairs_refuses_a_batch_size_below_one_before_loading_anything(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            main(["pairs", "no-such-run", "no-such-file.tsv", "--batch-size", value])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == (
            f"error: argument --batch-size: must be between 1 and 4096, not {value} (see workbench pairs --help)\n"
        )
