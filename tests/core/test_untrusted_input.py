"""Untrusted models and names: pickle weights only when the user opts in, a model folder's custom
code never runs, a run name cannot escape the runs folder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers.cli import one_error_line

from workbench.cli import main
from workbench.core.base.layout import RunError, check_run_name
from workbench.core.model.loading import ModelError, load_model, load_tokenizer


@pytest.fixture(scope="module")
def pickle_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its weights only in pytorch_model.bin (a pickle)."""

    folder = tmp_path_factory.mktemp("pickle-model")
    for item in tiny_model_dir.iterdir():
        if item.suffix != ".safetensors":
            shutil.copy2(item, folder / item.name)
    torch.save(load_model(str(tiny_model_dir)).state_dict(), folder / "pytorch_model.bin")
    return folder


def test_pickle_weights_load_only_when_the_user_opts_in(
    pickle_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelError, match=r"pickle files \(pytorch_model.bin\).*--allow-pickle"):
        load_model(str(pickle_model_dir))
    assert load_model(str(pickle_model_dir), allow_pickle=True).config.num_labels == 2

    model = str(pickle_model_dir)
    data = ["--data", str(tiny_cola_dir)]
    refused = [
        ["model", "show", "--model", model],
        ["predict", model, "--runs", str(tmp_path), "The cat sat."],
        ["eval", model, "--runs", str(tmp_path), *data],
        [
            "train",
            "--model",
            model,
            "--runs",
            str(tmp_path / "runs"),
            "--name",
            "p",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--train-limit",
            "64",
            "--precision",
            "fp32",
            *data,
        ],
    ]
    for args in refused:
        assert main(args) == 2, args
        assert "--allow-pickle" in one_error_line(capsys)
    assert main(["model", "show", "--model", model, "--allow-pickle"]) == 0
    assert main(["predict", model, "--runs", str(tmp_path), "--allow-pickle", "The cat sat."]) == 0
    assert (
        main(
            [
                "train",
                "--model",
                model,
                "--runs",
                str(tmp_path / "runs"),
                "--name",
                "q",
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--train-limit",
                "64",
                "--precision",
                "fp32",
                "--allow-pickle",
                *data,
            ]
        )
        == 0
    )
    assert (tmp_path / "runs" / "q" / "model" / "model.safetensors").is_file()  # saved back as safetensors


def test_trust_remote_code_is_never_set_in_the_source() -> None:
    uses = [
        (path.name, line.strip())
        for path in WORKBENCH.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if "trust_remote_code" in line
    ]
    assert uses, "the loaders should say trust_remote_code=False explicitly"
    assert all(re.search(r"trust_remote_code=False\b", line) for _, line in uses), uses


@pytest.mark.parametrize("model_type", ["bert", "evil-remote"])
def test_a_model_folder_with_custom_code_never_runs_it(model_type: str, tiny_model_dir: Path, tmp_path: Path) -> None:

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModelForSequenceClassification": "evil.EvilModel",
        "AutoTokenizer": ["evil.EvilTokenizer", None],
    }
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "REMOTE_CODE_RAN"
    (folder / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig as EvilConfig, BertForSequenceClassification as EvilModel\n"
        "from transformers import BertTokenizerFast as EvilTokenizer\n"
    )
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
def test_a_run_name_cannot_escape_the_runs_folder(
    name: str, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RunError):
        check_run_name(name)
    runs = tmp_path / "inner" / "runs"
    assert main(["train", "--runs", str(runs), "--name", name, "--model", str(tiny_model_dir)]) == 2
    assert "run name" in one_error_line(capsys)
    assert not (tmp_path / "inner").exists() and not Path("/abs/path").exists()


WORKBENCH = Path(__file__).resolve().parents[2] / "workbench"
