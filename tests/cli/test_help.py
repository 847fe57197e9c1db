"""--help: every setting once, with one sentence and one default; choices listed; examples at the end."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

import pytest

from workbench.cli import main
from workbench.cli.common import add_config_flags, config_from_args, shown_default
from workbench.core.base.config import TrainConfig, flag_fields, flag_name, parse_field, setting_choices, setting_help


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def options(text: str) -> dict[str, str]:
    """Each option's help, joined over its lines, by its first flag ('--epochs')."""
    entries: dict[str, str] = {}
    flag = ""
    for line in text.split("options:", 1)[1].split("\n\n", 1)[0].splitlines():
        match = re.match(r"  (-{1,2}[\w-]+)", line)
        if match:
            flag = match.group(1)
            assert flag not in entries, f"{flag} listed twice"
            entries[flag] = line[len(match.group(0)) :]
        elif line.strip():
            entries[flag] += " " + line.strip()
    return {name: " ".join(body.split()) for name, body in entries.items()}


def test_train_help_shows_each_setting_once_with_one_default_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["train", "--help"], capsys)
    assert "(default: None)" not in text
    entries = options(text)
    defaults = TrainConfig()
    for f in flag_fields():
        body = entries[flag_name(f.name)]
        assert body.count("(default:") == 1, body
        assert body.endswith(f"(default: {shown_default(getattr(defaults, f.name))})"), body
        first_words = " ".join(setting_help(f.name).rstrip(".").split()[1:4])
        assert first_words in body  # the sentence from core/config.py
    for flag, body in entries.items():
        if flag not in ("-h", "--launch-config"):
            assert body.count("(default:") == 1, f"{flag}: {body}"
    assert "--precision {auto,fp32,bf16}" in text and "auto (bf16 where" in entries["--precision"]
    assert setting_choices("precision") == ("auto", "fp32", "bf16")
    examples = text.split("examples:", 1)[1]
    assert "workbench train --epochs 1 --train-limit 256" in examples
    assert "--report-to tensorboard" in examples


@pytest.mark.parametrize("argv", [["--help"], ["eval", "--help"]])
def test_top_and_eval_help_end_with_examples(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(argv, capsys)
    assert "(default: None)" not in text
    tail = text.rstrip().split("examples:")[-1]
    assert tail.count("workbench") >= 3
    for flag, body in options(text).items():
        if flag != "-h":
            assert body.count("(default:") == 1, f"{flag}: {body}"


@dataclass
class WithSwitch(TrainConfig):
    calibrate: bool = field(default=False, metadata={"help": "Tune the decision threshold."})


def test_bool_settings_get_on_and_off_flags() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, WithSwitch)
    assert parser.parse_args(["--calibrate"]).calibrate is True
    assert parser.parse_args(["--no-calibrate"]).calibrate is False
    assert parser.parse_args([]).calibrate is None  # not given: the config's default stands
    assert "tune the decision threshold; --no-calibrate is --calibrate off (default: off)" in " ".join(
        parser.format_help().split()
    )
    assert parse_field("calibrate", "False", WithSwitch) is False
    assert parse_field("calibrate", " yes ", WithSwitch) is True
    with pytest.raises(ValueError, match="calibrate: 'maybe'"):
        parse_field("calibrate", "maybe", WithSwitch)


def test_flags_given_reach_the_config() -> None:
    from workbench.cli import build_parser

    args = build_parser().parse_args(["train", "--epochs", "3", "--precision", "fp32", "--report-to", "tensorboard"])
    config = config_from_args(args)
    assert (config.epochs, config.precision, config.report_to, config.batch_size) == (3, "fp32", "tensorboard", 0)
    assert config.effective_batch_size == 32  # not given: picked by the epochs (3)


def test_the_setting_has_on_off_flags_for_train_and_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import build_parser
    from workbench.cli.common import config_from_args
    from workbench.core.base.config import parse_field

    parser = build_parser()
    for command in ("train", "sweep"):
        for flags, expected in (
            (["--calibrate-threshold", "off"], False),
            (["--no-calibrate-threshold"], False),
            (["--calibrate-threshold=True"], True),
            ([], True),
        ):
            assert config_from_args(parser.parse_args([command, *flags])).calibrate_threshold is expected
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--calibrate-threshold", "maybe"])
        assert exit_info.value.code == 2 and "'maybe' is not on/off" in capsys.readouterr().err
    assert parse_field("calibrate_threshold", "Off") is False  # the TUI form's way


@pytest.mark.parametrize(
    "argv", [["--runs", "RUNS", "--run", "x"], ["train", "--epoch", "1"], ["sweep", "--trial", "2"]]
)
def test_an_option_is_known_by_its_whole_name_only(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A prefix is not taken for the option it starts: `--run x` read as `--runs x` opened a runs folder
    called x, silently; now it is an error (exit 2) before anything runs."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
