"""Bad input to the CLI: every bad data file is exit 2 and one line naming the file and line (before a
run folder is made); odd files that are fine parse; predict truncates and says so, prints any
script, and survives undecodable stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.bad_data import BAD_FILES, bad_file
from helpers.cli import one_error_line

from workbench.cli import main


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_files_give_exit_2_and_one_line(
    name: str, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, message = bad_file(tmp_path, name)
    assert main(["data", "show", "--data", str(path), "--model", str(tiny_model_dir)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {path}") and message in line, line

    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "--data",
                str(path),
                "--model",
                str(tiny_model_dir),
                "--runs",
                str(runs),
                "--name",
                "bad",
                "--precision",
                "fp32",
            ]
        )
        == 2
    )
    assert one_error_line(capsys) == line
    assert not (runs / "bad").exists()  # found before a run folder is made


def test_bom_and_crlf_files_parse_from_the_cli(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bom_crlf.tsv"
    path.write_bytes(
        b"\xef\xbb\xbfa\t1\t\tOne fine sentence.\r\nb\t0\t*\tSentence two the.\r\nc\t1\t\tA third one.\r\n"
    )
    assert main(["data", "show", "--data", str(path), "--model", str(tiny_model_dir), "--split", "holdout"]) == 0
    out = capsys.readouterr().out
    assert "holdout" in out and "3 sentences" in out


# ---------------------------------------------------------------- predict


def test_cli_predict_notes_truncation_and_prints_any_script(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = ("The dog barked. " * 700)[:10_000]
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), long, "שלום 😺"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].endswith("(truncated to 128 tokens)") and out[1].endswith("שלום 😺")
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), "--json", long]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["truncated"] is True and result["tokens"] == 128


def test_cli_predict_survives_undecodable_stdin(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait\n\x00\x00\nThe cat sat.\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), "--json"]) == 2  # the NUL-only line
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["sentence"] for r in results] == ["caf\ufffd au lait", "The cat sat."]
    assert captured.err.strip() == "error: empty sentence: type some words"


def test_a_reader_that_stops_early_gets_no_traceback(tiny_model_dir: Path) -> None:
    """`workbench data show ... | head -1`: the pipe closes under the printing; exit 141 as a shell's
    SIGPIPE, nothing on stderr. (A fresh process: the pipe is the real one; no torch is imported.)"""
    import subprocess

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "data",
            "show",
            "--split",
            "train",
            "--samples",
            "5000",
            "--model",
            str(tiny_model_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert first.startswith(b"train (") and err == ""
