"""No recorded evaluation is ever replaced by another dataset's, and two writers never lose an entry
(core.evaluation.datasets names what is scored; eval.json is read-modify-written under a lock)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.cli import main
from workbench.core.base import durable
from workbench.core.base.layout import RunError
from workbench.core.data.cola import SPLIT_FILES, project_data_dir
from workbench.core.evaluation.datasets import data_file_name, recording_folder, scored_data
from workbench.core.evaluation.evaluate import EvalReport, compute_metrics, predictions_file, record_report

ROWS = [
    ("The book was written by John.", 1, 1, 0.91, "r-67"),
    ("Him likes she.", 0, 1, 0.61, "c-05"),
    ("The cat sat on the mat.", 1, 0, 0.22, "swb04"),
]


def small_cola(folder: Path, rows: int = 40) -> Path:
    """A CoLA folder with the first ROWS lines of each bundled file."""
    folder.mkdir(parents=True)
    for file in SPLIT_FILES.values():
        lines = (project_data_dir() / file).read_text(encoding="utf-8").splitlines()[:rows]
        (folder / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def three_sentences(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (project_data_dir() / "in_domain_dev.tsv").read_text(encoding="utf-8").splitlines()[:3]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval-records")
    data = small_cola(folder / "cola")
    args = [
        "train",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(data),
        "--runs",
        str(folder / "runs"),
        "--name",
        "r",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--precision",
        "fp32",
    ]
    assert main(args) == 0
    return folder / "runs" / "r"


def test_a_data_file_named_like_a_split_or_the_calibration_never_replaces_their_record(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json.loads((trained / "eval.json").read_text(encoding="utf-8"))
    holdout_predictions = (trained / "predictions.tsv").read_bytes()
    assert before["holdout"]["n"] == 40 and "calibration" in before
    for stem in ("holdout", "calibration", "in_domain_dev"):
        path = three_sentences(tmp_path / f"{stem}.tsv")
        assert main(["eval", str(trained), "--data", str(path)]) == 0
    after = json.loads((trained / "eval.json").read_text(encoding="utf-8"))
    for key in ("holdout", "in_domain_dev", "calibration"):
        assert after[key] == before[key], key
    assert (trained / "predictions.tsv").read_bytes() == holdout_predictions
    for stem in ("holdout", "calibration", "in_domain_dev"):
        entry = after[f"file:{stem}"]
        assert entry["n"] == 3 and entry["data"] == str((tmp_path / f"{stem}.tsv").resolve())
        assert len(pd.read_csv(predictions_file(trained, f"file:{stem}"), sep="\t")) == 3
    capsys.readouterr()

    # another file with the same stem elsewhere: refused in one line, nothing changed
    other = three_sentences(tmp_path / "elsewhere" / "holdout.tsv")
    assert main(["eval", str(trained), "--data", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "file:holdout was scored on" in err and "rename" in err
    assert json.loads((trained / "eval.json").read_text(encoding="utf-8")) == after


def test_another_cola_folder_is_recorded_under_its_own_name(trained: Path, tmp_path: Path) -> None:
    other = small_cola(tmp_path / "other", rows=12)
    before = json.loads((trained / "eval.json").read_text(encoding="utf-8"))["holdout"]
    assert main(["eval", str(trained), "--data", str(other)]) == 0
    recorded = json.loads((trained / "eval.json").read_text(encoding="utf-8"))
    assert recorded["holdout"] == before and recorded["data:other:holdout"]["n"] == 12
    own = json.loads((trained / "config.json").read_text(encoding="utf-8"))["data"]
    assert scored_data(trained, own, "holdout").name == "holdout"  # the run's own data keeps the split's name


def test_whether_an_evaluation_is_recorded_has_one_rule(trained: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    assert recording_folder(trained / "model") == trained
    assert recording_folder(tiny_model_dir) is None  # a plain save_pretrained folder: nothing to record into
    assert recording_folder("bert-base-uncased") is None
    assert data_file_name(tmp_path) is None and data_file_name(three_sentences(tmp_path / "x.tsv")) == "file:x"


def _report(name: str) -> EvalReport:
    frame = pd.DataFrame(ROWS, columns=["sentence", "label", "predicted", "p_acceptable", "source"])
    metrics = compute_metrics(frame["label"].tolist(), frame["predicted"].tolist())
    return EvalReport(
        name=name,
        mcc=metrics["mcc"],
        accuracy=metrics["accuracy"],
        confusion=metrics["confusion"],
        n=metrics["n"],
        per_source=[],
        predictions=frame,
    )


def test_two_threads_recording_at_once_lose_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = durable.write_json_atomic

    def slow_write(path: Path, data: object) -> None:  # widens the read-modify-write window
        time.sleep(0.02)
        real_write(path, data)

    monkeypatch.setattr(durable, "write_json_atomic", slow_write)
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for i in range(8):
                record_report(tmp_path, _report(f"{prefix}{i}"))
        except BaseException as err:  # noqa: BLE001 (shown by the assert below)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(prefix,)) for prefix in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    recorded = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert sorted(recorded) == sorted(f"{p}{i}" for p in "ab" for i in range(8))


WRITER = """
import sys
from pathlib import Path
import pandas as pd
from workbench.core.evaluation.evaluate import EvalReport, record_report
frame = pd.DataFrame([("A b.", 1, 1, 0.9, "x")], columns=["sentence", "label", "predicted", "p_acceptable", "source"])
for i in range(40):
    record_report(Path(sys.argv[1]), EvalReport(f"{sys.argv[2]}{i}", 0.0, 1.0, [[0, 0], [0, 1]], 1, [], frame))
"""


def test_two_processes_recording_at_once_lose_no_entry(tmp_path: Path) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), prefix]) for prefix in ("a", "b")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    recorded = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert sorted(recorded) == sorted(f"{p}{i}" for p in "ab" for i in range(40))


def test_an_unreadable_eval_json_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "eval.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunError, match="cannot read"):
        record_report(tmp_path, _report("holdout"))
    assert (tmp_path / "eval.json").read_text(encoding="utf-8") == "{not json"
