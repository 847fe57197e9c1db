"""Sweeps across machines compare like with like: the fixed settings a study was created with are
checked on join, exactly one process creates the study's space, and no storage secret is ever shown."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest

from workbench.cli import main
from workbench.core.base.config import TrainConfig
from workbench.core.search.space import SweepError, parse_space
from workbench.core.search.storage import default_storage, open_storage, redact, safe_url, sqlite_path
from workbench.core.search.study import open_study, recorded_study

SPACE = parse_space({"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}}, "test")


def tiny_flags(model: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "--model",
        str(model),
        "--runs",
        str(runs),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--train-limit",
        "32",
        "--precision",
        "fp32",
        *extra,
    ]


SECRET_URLS = [
    "postgresql:/user:secret@127.0.0.1:1/x",  # malformed: SQLAlchemy cannot parse it
    "postgresql://user:secret@127.0.0.1:1/x",
    "postgresql+psycopg://user:secret@127.0.0.1:1/x?sslmode=disable",
    "postgresql://127.0.0.1:1/x?user=u&password=secret",
    "mysql://user:secret@127.0.0.1:1/x",
    "postgresql://user:secret@[::1:1/x",  # a broken host
    "nosuchdb://user:secret@host/x",
]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_no_storage_secret_in_any_output(
    url: str, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "secret" not in safe_url(url)
    assert main(["sweep", "--trials", "1", "--storage", url, *tiny_flags(tiny_model_dir, tmp_path)]) == 2
    assert main(["sweep", "show", "--storage", url, "--json"]) == 2
    out, err = capsys.readouterr()
    assert "secret" not in out + err, out + err
    assert err.count("error: ") == 2 and len(err.strip().splitlines()) == 2  # one line each


# passwords of distinctive pieces (Xq7, Zr9), joined by what a URL should have percent-encoded, or encoded
PASSWORDS = ["Xq7@Zr9", "Xq7@Zr9@", "Xq7:Zr9", "Xq7/Zr9", "Xq7%Zr9", "Xq7%40Zr9", "Xq7?Zr9#"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_part_of_a_password_is_shown_whatever_it_holds(
    password: str, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql+psycopg://bob:{password}@127.0.0.1:1/sweeps"
    assert safe_url(url) == "postgresql+psycopg://bob:***@127.0.0.1:1/sweeps"
    assert main(["sweep", "show", "--storage", url, "--json"]) == 2
    assert main(["sweep", "--trials", "1", "--storage", url, *tiny_flags(tiny_model_dir, tmp_path)]) == 2
    out, err = capsys.readouterr()
    for piece in ("Xq7", "Zr9"):
        assert piece not in out + err, out + err
    assert err.count("error: storage postgresql+psycopg://bob:***@127.0.0.1:1/sweeps: ") == 2, err
    if "@Zr9" in password:  # a parser would cut it at the first '@': refused before any parser reads it
        assert "its password holds an '@', which a URL must write as %40" in err


def test_a_url_without_a_password_is_shown_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://bob@127.0.0.1:1/sweeps"
    assert safe_url(url) == url
    assert main(["sweep", "show", "--storage", url]) == 2
    assert f"error: storage {url}: cannot open it" in capsys.readouterr().err


def test_redact_masks_what_it_is_given() -> None:
    assert (
        redact("could not parse 'postgresql:/u:pa55@h/x'", "postgresql:/u:pa55@h/x")
        == "could not parse 'postgresql:/u:***@h/x'"
    )
    assert safe_url("sqlite:////tmp/sweeps.db") == "sqlite:////tmp/sweeps.db"  # nothing to hide, unchanged


@pytest.mark.parametrize("name", ["runs?x=1", "runs#2", "a b%20c"])
def test_the_default_storage_lies_in_the_runs_folder_whatever_its_name(name: str, tmp_path: Path) -> None:
    runs = tmp_path / name
    url = default_storage(runs)
    assert sqlite_path(url) == (runs / "sweeps.db").resolve()
    open_storage(url)
    assert (runs / "sweeps.db").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [name]  # nowhere else


def base(model: Path, **changes: Any) -> TrainConfig:
    config = TrainConfig(model=str(model), epochs=1, batch_size=16, train_limit=32, precision="fp32")
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_joining_with_other_fixed_settings_is_one_line_exit_2(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    storage = default_storage(runs)
    open_study("s", open_storage(storage), SPACE, base(tiny_model_dir))
    # another machine: a copy of the same data elsewhere and another eval batch size join the study
    open_study("s", open_storage(storage), SPACE, base(tiny_model_dir, eval_batch_size=7))
    with pytest.raises(SweepError, match=r"other fixed settings \(epochs 1 there, 2 here\)"):
        open_study("s", open_storage(storage), SPACE, base(tiny_model_dir, epochs=2))

    space = tmp_path / "space.json"
    space.write_text(json.dumps({"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}}))
    capsys.readouterr()
    flags = tiny_flags(tiny_model_dir, runs, "--max-length", "64")
    assert main(["sweep", "--trials", "1", "--study", "s", "--space", str(space), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_length 128 there, 64 here" in err[0], err
    assert not any(runs.glob("s-t*"))  # no trial ran


def test_the_data_is_compared_by_content_not_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    from workbench.core.data.cola import project_data_dir

    lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()
    here, there, other = tmp_path / "a" / "d.tsv", tmp_path / "b" / "d.tsv", tmp_path / "c" / "d.tsv"
    for path, rows in ((here, lines[:30]), (there, lines[:30]), (other, lines[1:31])):
        path.parent.mkdir()
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    storage = default_storage(tmp_path / "runs")
    open_study("d", open_storage(storage), SPACE, base(tiny_model_dir, data=str(here)))
    open_study("d", open_storage(storage), SPACE, base(tiny_model_dir, data=str(there)))
    with pytest.raises(SweepError, match="data"):
        open_study("d", open_storage(storage), SPACE, base(tiny_model_dir, data=str(other)))


def test_two_processes_creating_a_study_at_once_cannot_both_record_their_space(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both calls get past creating the study before either records a space (a barrier holds them
    there): exactly one space is recorded and the other caller is refused."""
    storage = default_storage(tmp_path)
    open_storage(storage)  # the schema, made once
    real_create = optuna.create_study
    barrier = threading.Barrier(2, timeout=3)

    def create_then_wait(*args: Any, **kwargs: Any) -> Any:
        study = real_create(*args, **kwargs)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass  # the other caller did not get this far
        return study

    monkeypatch.setattr(optuna, "create_study", create_then_wait)
    spaces = [SPACE, parse_space({"learning_rate": {"low": 2e-4, "high": 1e-3, "log": True}}, "other")]
    outcomes: list[str] = []

    def join(space: Any) -> None:
        try:
            open_study("race", open_storage(storage), space, base(tiny_model_dir))
            outcomes.append("joined")
        except SweepError as err:
            outcomes.append(f"refused: {err}")

    threads = [threading.Thread(target=join, args=(space,)) for space in spaces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split(":")[0] for o in outcomes) == ["joined", "refused"], outcomes
    assert "another space" in next(o for o in outcomes if o.startswith("refused"))
    recorded, _ = recorded_study(optuna.load_study(study_name="race", storage=storage))
    assert recorded in (spaces[0].to_dict(), spaces[1].to_dict())


def test_a_machine_joining_while_the_creator_records_sees_its_fixed_settings(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The creator is held right after its first write of the study's attributes; a machine joining then,
    with other fixed settings, is refused (it read a space and no fixed settings, and joined unchecked)."""
    storage = default_storage(tmp_path / "runs")
    creators_storage = open_storage(storage)
    written, release = threading.Event(), threading.Event()
    real_write = creators_storage.set_study_user_attr

    def write_then_hold(*args: Any, **kwargs: Any) -> None:
        real_write(*args, **kwargs)
        if not written.is_set():
            written.set()
            release.wait(timeout=60)

    creators_storage.set_study_user_attr = write_then_hold
    creator = threading.Thread(target=open_study, args=("w", creators_storage, SPACE, base(tiny_model_dir)))
    creator.start()
    try:
        assert written.wait(timeout=60), "the creator never recorded anything"
        with pytest.raises(SweepError, match=r"other fixed settings \(epochs 1 there, 2 here\)"):
            open_study("w", open_storage(storage), SPACE, base(tiny_model_dir, epochs=2))
    finally:
        release.set()
        creator.join()
    space, fixed = recorded_study(optuna.load_study(study_name="w", storage=storage))
    assert space == SPACE.to_dict() and fixed is not None and fixed["epochs"] == 1


def test_a_failed_trial_keeps_its_checkpoint_to_resume(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import faults

    from workbench.core.search.sweep import run_sweep

    monkeypatch.setattr(
        "workbench.core.model.loading.load_model", faults.on_training_model(faults.infinite_gradient_at(3))
    )
    config = base(tiny_model_dir, train_limit=64, checkpoint_every=1, learning_rate=1e-3)
    outcome = run_sweep(config, 1, "f", space=SPACE, runs_dir=tmp_path)
    assert [t.state for t in outcome.trials] == ["failed"]
    assert (tmp_path / "f-t0" / "checkpoint").is_dir()  # `workbench train --resume f-t0` can go on


def test_a_batch_size_of_0_compares_as_the_batch_it_picks_when_the_epochs_are_fixed(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A study created with batch 32 at 2 epochs (as before 0 became the default) is joined by the default
    (0, which picks 32 for 2 epochs); at 1 epoch 0 picks 8, and the join is refused naming both."""
    storage = default_storage(tmp_path / "runs")
    open_study("b", open_storage(storage), SPACE, base(tiny_model_dir, epochs=2, batch_size=32))
    open_study("b", open_storage(storage), SPACE, base(tiny_model_dir, epochs=2, batch_size=0))
    open_study("c", open_storage(storage), SPACE, base(tiny_model_dir, epochs=1, batch_size=32))
    with pytest.raises(SweepError, match=r"batch_size 32 there, 8 here"):
        open_study("c", open_storage(storage), SPACE, base(tiny_model_dir, epochs=1, batch_size=0))
