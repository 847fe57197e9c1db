"""Reliability: bad input, interruptions and faults never lose work or crash the workbench.

Each test names the guarantee it proves; faults are injected (SIGKILL through the
WORKBENCH_FAULT hook or at a random moment, a monkeypatched forward that raises
out-of-memory or returns an infinite loss, a monkeypatched disk_usage)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workbench.cli import main
from workbench.core.base.config import TrainConfig, project_data_dir
from workbench.core.base.durable import replace_dir_atomic
from workbench.core.base.errors import TrainingError
from workbench.core.base.layout import RunError, check_run_name
from workbench.core.data.cola import DataError, load_table
from workbench.core.model.loading import ModelError, load_model, load_tokenizer
from workbench.core.model.predict import InputError, Predictor
from workbench.core.runs.metrics import read_metrics
from workbench.core.training.train import load_checkpoint, train

WORKBENCH = Path(__file__).resolve().parents[1] / "workbench"


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a failed command wrote to stderr (asserting there is exactly one)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ")
    return lines[0]


# ---------------------------------------------------------------- bad data: the loader

TOKENS = ["label", "sentence", "source", "Label ", "\t", ",", '"', "\n", "\r", "\r\n", "\x00", "\x0c", "\u2028",
          "\x85", "\ufeff", "0", "1", "2", " ", "yes", "The cat sat.", "café", "😺", "שלום", "*", ""]
texts = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
contents = st.one_of(
    st.binary(max_size=300),
    texts.map(lambda t: t.encode("utf-8")),
    texts.map(lambda t: t.encode("latin-1", errors="replace")),
    st.lists(texts, max_size=6).map(lambda rows: ("sentence,label\n" + "\n".join(rows)).encode("utf-8")),
    st.lists(st.tuples(texts, texts), max_size=6).map(
        lambda rows: "".join(f"src\t{a}\t\t{b}\n" for a, b in rows).encode("utf-8")),
)


def line_count(raw: bytes) -> int:
    """Lines as an editor counts them (\\n, \\r\\n or a lone \\r)."""
    return len(re.split(rb"\r\n|\r|\n", raw))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=contents)
@example(raw=b"label\tx,sentence\n1\tfoo\n")  # a header the first guess and csv split differently (ValueError)
@example(raw=b"a\t1\t\tone\x0ctwo\na\t1\t\tthree\n")  # a form feed is not a line break (line numbers shifted)
@example(raw=b"sentence,label\n" + b"x" * 200_000 + b",1\n")  # over csv's field size limit
@example(raw=b"label,sentence\n")  # a header and nothing else
def test_loader_gives_rows_or_a_data_error_naming_file_and_line(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_bytes(raw)
    lines = line_count(raw)
    try:
        frame = load_table(path)
    except DataError as err:
        assert str(err).startswith(f"{path}:")
        assert err.line is None or 1 <= err.line <= lines, (err.line, lines)
        return
    assert len(frame) >= 1 and list(frame.columns) == ["source", "label", "mark", "sentence", "line"]
    assert set(frame["label"]) <= {0, 1}
    for sentence in frame["sentence"]:
        assert sentence and sentence == sentence.strip() and "\x00" not in sentence
    numbers = frame["line"].tolist()
    assert numbers == sorted(set(numbers)) and 1 <= numbers[0] and numbers[-1] <= lines


def test_an_unclosed_quote_in_a_csv_is_an_error_not_a_silent_repair(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('label,sentence\n1,"The cat sat.\n0,Cat the sat.\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"q.csv:\d+: malformed CSV"):
        load_table(path)


# ---------------------------------------------------------------- bad data: the CLI

BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    # name: (content, or None for "make it specially"; what the one error line must say)
    "columns.tsv": (b"a\t1\t\tfine\nb\t1\tonly three\n", ":2: expected 4 tab-separated columns"),
    "label2.tsv": (b"a\t1\t\tfine\nb\t2\t\ttwo\n", ":2: label: '2' is not 0 or 1"),
    "yes.csv": (b"sentence,label\nGood.,1\nBad.,yes\n", ":3: label: 'yes' is not 0 or 1"),
    "empty_sentence.tsv": (b"a\t1\t\tfine\na\t0\t\t  \n", ":2: sentence: is empty"),
    "nul.tsv": (b"a\t1\t\tfine\na\t0\t\tbad\x00byte\n", ":2: sentence: contains a NUL byte"),
    "latin1.tsv": (b"a\t1\t\tfine\na\t1\t\tcaf\xe9\n", ":2: bytes b'\\xe9\\n' are not UTF-8"),
    "latin1_cr.tsv": (b"a\t1\t\tfine\ra\t1\t\tok\ra\t1\t\tcaf\xe9\r", ":3: bytes b'\\xe9\\r' are not UTF-8"),
    "quote.csv": (b'label,sentence\n1,"unclosed\n', "malformed CSV"),
    "header_only.csv": (b"sentence,label\n", "has a header but no sentences"),
    "one_row.tsv": (b"a\t1\t\tOnly one.\n", "at least 2 are needed"),
    "zero.tsv": (b"", "is empty"),
    "folder": (None, "is not a CoLA folder"),
    "missing.tsv": (None, "no such file or folder"),
}


def bad_file(tmp_path: Path, name: str) -> tuple[Path, str]:
    content, message = BAD_FILES[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "folder":
        path.mkdir()
    return path, message


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_files_give_exit_2_and_one_line(name: str, tmp_path: Path, tiny_model_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, message = bad_file(tmp_path, name)
    assert main(["data", "show", "--data", str(path), "--model", str(tiny_model_dir)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {path}") and message in line, line

    runs = tmp_path / "runs"
    assert main(["train", "--data", str(path), "--model", str(tiny_model_dir), "--runs", str(runs),
                 "--name", "bad", "--precision", "fp32"]) == 2
    assert one_error_line(capsys) == line
    assert not (runs / "bad").exists()  # found before a run folder is made


def test_bom_and_crlf_files_parse_from_the_cli(tmp_path: Path, tiny_model_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bom_crlf.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\t1\t\tOne fine sentence.\r\nb\t0\t*\tSentence two the.\r\n"
                     b"c\t1\t\tA third one.\r\n")
    assert main(["data", "show", "--data", str(path), "--model", str(tiny_model_dir), "--split", "holdout"]) == 0
    out = capsys.readouterr().out
    assert "holdout" in out and "3 sentences" in out


# ---------------------------------------------------------------- bad sentences

@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor(load_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir)))


@pytest.mark.parametrize("text", ["", "   ", "\t\n \r", "\x00", "\x00\x01\x1b\x7f"])
def test_empty_sentences_get_a_clear_message(predictor: Predictor, text: str) -> None:
    with pytest.raises(InputError, match="empty sentence"):
        predictor.predict_one(text)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("The cat 😺 sat on the mat. 🎉🎉", "The cat 😺 sat on the mat. 🎉🎉"),
        ("הספר נכתב על ידי ג'ון.", "הספר נכתב על ידי ג'ון."),  # right to left
        ("كتب جون الكتاب.", "كتب جون الكتاب."),
        ("\u202eThe book was written.\u202c", "\u202eThe book was written.\u202c"),  # bidi override kept
        ("The\x00 cat\x07 sat\x1b[31m.", "The cat sat[31m."),  # control characters (NUL, BEL, ESC) dropped
        ("caf\udce9 au lait", "caf\ufffd au lait"),  # a lone surrogate from undecodable argv bytes
        ("\u200b", "\u200b"),  # invisible, but not empty: a result, not a crash
    ],
)
def test_odd_sentences_get_a_result(predictor: Predictor, text: str, shown: str) -> None:
    result = predictor.predict_one(text)
    assert result.sentence == shown and not result.truncated
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # printable as UTF-8


def test_a_10000_character_sentence_is_truncated_and_says_so(predictor: Predictor) -> None:
    text = ("The cat sat. " * 800)[:10_000]
    result = predictor.predict_one(text)
    assert result.truncated and result.tokens == predictor.max_length == 128


def test_truncation_respects_a_model_with_fewer_positions(tiny_model_dir: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = load_tokenizer(str(tiny_model_dir))
    short = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, num_labels=2))
    result = Predictor(short, tokenizer).predict_one("word " * 2000)  # 128 tokens would overrun 32 positions
    assert result.truncated and result.tokens == 32


def test_cli_predict_notes_truncation_and_prints_any_script(tiny_model_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    long = ("The dog barked. " * 700)[:10_000]
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), long, "שלום 😺"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].endswith("(truncated to 128 tokens)") and out[1].endswith("שלום 😺")
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), "--json", long]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["truncated"] is True and result["tokens"] == 128


def test_cli_predict_survives_undecodable_stdin(tiny_model_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import io

    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait\n\x00\x00\nThe cat sat.\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), "--json"]) == 2  # the NUL-only line
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["sentence"] for r in results] == ["caf\ufffd au lait", "The cat sat."]
    assert captured.err.strip() == "error: empty sentence: type some words"


# ---------------------------------------------------------------- interruptions: SIGKILL

@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 CoLA sentences: 57 to train on (4 steps of 16), 7 to validate; the whole file is the holdout."""
    path = tmp_path_factory.mktemp("small-data") / "small.tsv"
    lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()[:64]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_config(tiny_config: TrainConfig, small_data: Path) -> TrainConfig:
    tiny_config.data = str(small_data)
    return tiny_config


def tiny_cli_args(model: Path, data: Path, runs: Path, name: str) -> list[str]:
    return ["train", "--model", str(model), "--data", str(data), "--runs", str(runs), "--name", name,
            "--epochs", "2", "--batch-size", "16", "--precision", "fp32", "--learning-rate", "1e-3",
            "--eval-batch-size", "256", "--checkpoint-every", "1"]


def cli_process(args: list[str], fault: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WORKBENCH_FAULT": fault}
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def outcome(run: Path) -> tuple[dict[int, float], dict[int, dict[str, float]], dict[str, Any]]:
    """Loss per step, metrics per epoch (the last record of each, as a resume may repeat some) and the end."""
    events = read_metrics(run)
    losses = {e["step"]: e["loss"] for e in events if e["kind"] == "step"}
    epochs = {e["epoch"]: {k: e[k] for k in ("train_loss", "val_loss", "val_accuracy", "val_mcc")}
              for e in events if e["kind"] == "epoch"}
    return losses, epochs, events[-1]


def assert_same_outcome(run: Path, reference: Path) -> None:
    losses, epochs, end = outcome(run)
    ref_losses, ref_epochs, ref_end = outcome(reference)
    assert sorted(losses) == sorted(ref_losses) == list(range(1, 9))
    assert [losses[s] for s in sorted(losses)] == pytest.approx([ref_losses[s] for s in sorted(losses)], abs=1e-5)
    assert sorted(epochs) == [1, 2]
    for number in (1, 2):
        assert epochs[number] == pytest.approx(ref_epochs[number], abs=1e-5)
    assert end["status"] == ref_end["status"] == "done"
    assert end["holdout_mcc"] == pytest.approx(ref_end["holdout_mcc"], abs=1e-5)


def killed(args: list[str], fault: str) -> None:
    proc = cli_process(args, fault=fault)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, output


def test_sigkill_at_any_moment_keeps_the_previous_checkpoint_and_resume_matches_an_uninterrupted_run(
        tiny_model_dir: Path, small_data: Path, tmp_path: Path) -> None:
    """One run killed four times (three inside checkpoint and model writes, by the WORKBENCH_FAULT hook,
    one at a random moment), resumed after each, ends as a run that was never interrupted."""
    runs = tmp_path / "runs"
    assert main(tiny_cli_args(tiny_model_dir, small_data, runs, "whole")) == 0  # 8 steps, 2 epochs
    args = tiny_cli_args(tiny_model_dir, small_data, runs, "killed")
    resume = ["train", "--resume", "killed", "--runs", str(runs)]
    run = runs / "killed"

    killed(args, "swap:checkpoint@3")  # step 3: checkpoint/ moved aside, the new one not yet in
    assert not (run / "checkpoint").exists() and (run / ".checkpoint.old" / "meta.json").is_file()
    assert load_checkpoint(run)[0]["step"] == 2

    killed(resume, "swap:model@1")  # end of epoch 1, while the first best model is moved into place
    meta, _ = load_checkpoint(run)
    assert (meta["step"], meta["epoch"], meta["epoch_step"]) == (4, 0, 4) and not (run / "model").exists()

    killed(resume, "checkpoint:write@2")  # step 5: its state written, its marker not yet
    meta, state = load_checkpoint(run)
    assert (meta["step"], meta["epoch"]) == (4, 1) and "optimizer" in state
    assert (run / "model" / "model.safetensors").is_file()

    seed = int(time.time())
    rng = random.Random(seed)
    proc = cli_process(resume)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if any(e["kind"] == "step" and e["step"] > 5 for e in read_metrics(run)):
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.1))  # somewhere in a step, a checkpoint write or the final evaluation
    proc.kill()
    proc.communicate(timeout=60)
    ends = [e["status"] for e in read_metrics(run) if e["kind"] == "end"]
    if ends and ends[-1] == "done":  # the kill came after the run ended: the run must be whole as it is
        assert_same_outcome(run, runs / "whole")
        assert main(resume) == 2  # nothing left to resume
        return
    # killed in a step, a checkpoint, a validation or the final evaluation (after the last
    # checkpoint, marked finished): every case resumes to the run that was never interrupted
    assert main(resume) == 0, f"random seed {seed}, killed at step {load_checkpoint(run)[0]['step']}"
    assert (run / "checkpoint" / "meta.json").is_file() and not (run / ".checkpoint.old").exists()
    assert_same_outcome(run, runs / "whole")


def test_a_swap_cut_short_never_deletes_the_only_whole_copy(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A first crash left only .checkpoint.old; a second crash in the next swap must not lose it."""
    old = tmp_path / ".checkpoint.old"
    old.mkdir()
    (old / "meta.json").write_text("{}")
    staged = tmp_path / ".checkpoint.tmp"
    staged.mkdir()

    def die(name: str) -> None:
        raise SystemExit(f"killed at {name}")

    monkeypatch.setattr("workbench.core.base.durable.fault_point", die)
    with pytest.raises(SystemExit):
        replace_dir_atomic(staged, tmp_path / "checkpoint")
    assert (old / "meta.json").is_file()


# ---------------------------------------------------------------- faults

def forward_with(fault: Any) -> Any:
    """BertForSequenceClassification.forward, with FAULT(model, output, calls) applied to each output."""
    from transformers import BertForSequenceClassification

    original = BertForSequenceClassification.forward
    calls = {"train": 0, "eval": 0}

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["train" if self.training else "eval"] += 1
        return fault(self, original(self, *args, **kwargs), calls)

    return forward


def test_infinite_loss_stops_and_keeps_the_last_good_checkpoint_and_best_model(
        small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def inf_from_step_6(model: Any, output: Any, calls: dict[str, int]) -> Any:
        if model.training and calls["train"] >= 6:
            output.loss = output.loss * float("inf")
        return output

    monkeypatch.setattr("transformers.BertForSequenceClassification.forward", forward_with(inf_from_step_6))
    run = tmp_path / "run"
    kept: dict[str, bytes] = {}

    def remember(event: dict[str, Any]) -> None:
        if event["kind"] == "checkpoint":
            kept["meta"] = (run / "checkpoint" / "meta.json").read_bytes()
            kept["model"] = (run / "model" / "model.safetensors").read_bytes()

    result = train(small_config, run, on_event=remember)
    assert result.status == "failed" and "loss became inf at step 6" in result.error
    assert "checkpoint and the best model are kept" in result.error
    assert (run / "checkpoint" / "meta.json").read_bytes() == kept["meta"]
    assert (run / "model" / "model.safetensors").read_bytes() == kept["model"]
    assert load_checkpoint(run)[0]["epoch"] == 1
    assert read_metrics(run)[-1]["status"] == "failed"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("train", r"out of memory at batch size 16 \(max length 128\) on cpu.*; try --batch-size 8"),
        ("eval", r"out of memory validating at eval batch size 256 \(max length 128\); try --eval-batch-size 128"),
    ],
)
def test_out_of_memory_names_the_batch_size_and_suggests_a_smaller_one(
        when: str, message: str, small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(model: Any, output: Any, calls: dict[str, int]) -> Any:
        if (model.training and when == "train" and calls["train"] == 2) or (not model.training and when == "eval"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return output

    monkeypatch.setattr("transformers.BertForSequenceClassification.forward", forward_with(out_of_memory))
    with pytest.raises(TrainingError, match=message):
        train(small_config, tmp_path / "run")
    end = read_metrics(tmp_path / "run")[-1]
    assert end["kind"] == "end" and end["status"] == "failed" and "out of memory" in end["error"]


def test_an_unwritable_run_folder_is_found_before_training(tiny_config: TrainConfig, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # root ignores permissions, but not a file where a folder must be
    with pytest.raises(RunError, match="cannot write here"):
        train(tiny_config, blocker / "run")
    assert main(["train", "--runs", str(blocker), "--name", "x", "--model", tiny_config.model]) == 2
    assert "cannot write here" in one_error_line(capsys)


def test_a_full_disk_is_found_before_training(tiny_config: TrainConfig, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("workbench.core.base.layout.shutil.disk_usage", lambda _: usage(10**12, 10**12 - 2**20, 2**20))
    with pytest.raises(RunError, match="only 1 MiB free"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "config.json").exists()
    runs = tmp_path / "runs"
    assert main(["train", "--runs", str(runs), "--name", "x", "--model", tiny_config.model]) == 2
    assert "MiB free" in one_error_line(capsys)
    assert not (runs / "x" / "metrics.jsonl").exists()


def test_two_processes_cannot_train_into_one_run_folder(tiny_model_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    args = [*tiny_cli_args(tiny_model_dir, project_data_dir(), runs, "shared"), "--train-limit", "4000"]
    args[args.index("--checkpoint-every") + 1] = "0"
    first = cli_process(args)
    try:
        deadline = time.time() + 120
        while not any(e["kind"] == "step" for e in read_metrics(runs / "shared")):
            assert first.poll() is None and time.time() < deadline, first.communicate()[0]
            time.sleep(0.1)
        before = (runs / "shared" / "metrics.jsonl").stat().st_size
        assert main(["train", "--resume", "shared", "--runs", str(runs)]) == 2
        assert "another training is writing this run" in one_error_line(capsys)
        assert main(args) == 2
        assert "a run already exists here" in one_error_line(capsys)
        assert first.poll() is None  # the first training goes on, its events untouched by the others
        assert all(e.get("status") != "failed" for e in read_metrics(runs / "shared"))
        assert (runs / "shared" / "metrics.jsonl").stat().st_size >= before
    finally:
        first.kill()
        first.communicate(timeout=60)


# ---------------------------------------------------------------- untrusted models and names

@pytest.fixture(scope="module")
def pickle_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its weights only in pytorch_model.bin (a pickle)."""
    import shutil

    folder = tmp_path_factory.mktemp("pickle-model")
    for item in tiny_model_dir.iterdir():
        if item.suffix != ".safetensors":
            shutil.copy2(item, folder / item.name)
    torch.save(load_model(str(tiny_model_dir)).state_dict(), folder / "pytorch_model.bin")
    return folder


def test_pickle_weights_load_only_when_the_user_opts_in(pickle_model_dir: Path, small_data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelError, match=r"pickle files \(pytorch_model.bin\).*--allow-pickle"):
        load_model(str(pickle_model_dir))
    assert load_model(str(pickle_model_dir), allow_pickle=True).config.num_labels == 2

    model = str(pickle_model_dir)
    data = ["--data", str(small_data)]
    refused = [["model", "show", "--model", model],
               ["predict", model, "--runs", str(tmp_path), "The cat sat."],
               ["eval", model, "--runs", str(tmp_path), *data],
               ["train", "--model", model, "--runs", str(tmp_path / "runs"), "--name", "p", "--epochs", "1",
                "--batch-size", "16", "--precision", "fp32", *data]]
    for args in refused:
        assert main(args) == 2, args
        assert "--allow-pickle" in one_error_line(capsys)
    assert main(["model", "show", "--model", model, "--allow-pickle"]) == 0
    assert main(["predict", model, "--runs", str(tmp_path), "--allow-pickle", "The cat sat."]) == 0
    assert main(["train", "--model", model, "--runs", str(tmp_path / "runs"), "--name", "q", "--epochs", "1",
                 "--batch-size", "16", "--precision", "fp32", "--allow-pickle", *data]) == 0
    assert (tmp_path / "runs" / "q" / "model" / "model.safetensors").is_file()  # saved back as safetensors


def test_trust_remote_code_is_never_set_in_the_source() -> None:
    uses = [(path.name, line.strip()) for path in WORKBENCH.rglob("*.py")
            for line in path.read_text(encoding="utf-8").splitlines() if "trust_remote_code" in line]
    assert uses, "the loaders should say trust_remote_code=False explicitly"
    assert all(re.search(r"trust_remote_code=False\b", line) for _, line in uses), uses


@pytest.mark.parametrize("model_type", ["bert", "evil-remote"])
def test_a_model_folder_with_custom_code_never_runs_it(model_type: str, tiny_model_dir: Path,
                                                       tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel",
                          "AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "REMOTE_CODE_RAN"
    (folder / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig as EvilConfig, BertForSequenceClassification as EvilModel\n"
        "from transformers import BertTokenizerFast as EvilTokenizer\n")
    try:
        model = load_model(str(folder))
        assert type(model).__name__ == "BertForSequenceClassification"  # the library's own class
    except ModelError as err:
        assert model_type == "evil-remote" and "custom code" in str(err)
    try:
        load_tokenizer(str(folder))
    except ModelError as err:
        assert "custom code" in str(err) or "trust_remote_code" in str(err)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../x", "/abs/path", "a/b", "x\n", ".hidden", "..", "a..b"])
def test_a_run_name_cannot_escape_the_runs_folder(name: str, tmp_path: Path, tiny_model_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RunError):
        check_run_name(name)
    runs = tmp_path / "inner" / "runs"
    assert main(["train", "--runs", str(runs), "--name", name, "--model", str(tiny_model_dir)]) == 2
    assert "run name" in one_error_line(capsys)
    assert not (tmp_path / "inner").exists() and not Path("/abs/path").exists()
