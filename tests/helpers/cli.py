"""What the CLI tests share: the one-line error check and the tiny training's flags."""

from __future__ import annotations

from pathlib import Path

import pytest


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a failed command wrote to stderr (asserting there is exactly one)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ")
    return lines[0]


def exit_status(argv: list[str]) -> int:
    """What `workbench ARGV` exits with: main's status, or argparse's for an option refused as it is read."""
    from workbench.cli import main

    try:
        return main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)


def train_args(model: Path, data: Path, runs: Path, name: str, *extra: str) -> list[str]:
    """A 2-epoch training of 4 steps an epoch (64 sentences, batch 16), checkpoints per epoch
    (conftest's cli_runs are trained with these: a test comparing with them must use them too)."""
    return [
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--runs",
        str(runs),
        "--name",
        name,
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--train-limit",
        "64",
        "--precision",
        "fp32",
        "--learning-rate",
        "1e-3",
        "--eval-batch-size",
        "256",
        *extra,
    ]
