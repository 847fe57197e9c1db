"""The Hugging Face hub unreachable (refusing connections, or never answering): a hub model fails at
once in one line; a model in the local cache loads without a request. A fresh process each, so the
hub's endpoint comes from the environment."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def dead_hub(request: pytest.FixtureRequest) -> Iterator[str]:
    """An HF_ENDPOINT that refuses connections, or that accepts them and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    if request.param == "refused":
        server.close()
    else:
        server.listen(16)  # the kernel completes each handshake; nobody ever reads or answers
    yield f"http://127.0.0.1:{port}"
    server.close()


def cli_offline(args: list[str], endpoint: str, hf_home: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), PYTHONUNBUFFERED="1")
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "workbench.cli", *args], env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"still waiting for the hub after 60 s: {str(err.stderr)[-1500:]}") from None
    return result, time.monotonic() - started


def train_with(model: str, name: str, endpoint: str, folder: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    return cli_offline(
        ["train", "--model", model, "--runs", str(folder / "runs"), "--name", name], endpoint, folder / "hf"
    )


@pytest.fixture(scope="module")
def start_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    """The command's own start (imports, data check: about 4 s on 2 quiet cores), measured by the same
    command failing on a local folder, with no hub in the way (once for the module's tests)."""
    folder = tmp_path_factory.mktemp("local")
    return train_with(str(folder / "no-such-model"), "local", "http://127.0.0.1:9", folder)[1]


@pytest.mark.parametrize("dead_hub", ["refused", "silent"], indirect=True)
def test_an_unreachable_hub_fails_at_once_with_one_line(dead_hub: str, start_seconds: float, tmp_path: Path) -> None:
    """The hub costs a few seconds on top of the command's own start (the 3-s probe), never transformers'
    own retries (30 s and more). The bound leaves room for a loaded machine: under a second training on
    the same 2 cores the silent hub cost 8.3 s over a start of 6.9 s."""
    result, seconds = train_with("bert-base-uncased", "hub", dead_hub, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: bert-base-uncased: ") and "unreachable" in lines[0]
    assert "--model PATH" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert seconds - start_seconds < 15, f"{seconds:.1f} s, {start_seconds:.1f} s of them to start"


@pytest.mark.parametrize("dead_hub", ["silent"], indirect=True)
def test_a_cached_hub_model_loads_while_the_hub_is_unreachable(
    dead_hub: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The model in the local Hugging Face cache (its on-disk layout) is used without a request."""
    snapshot = tmp_path / "hf" / "hub" / "models--tiny-org--tiny-bert" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    result, _ = cli_offline(["model", "show", "--model", "tiny-org/tiny-bert"], dead_hub, tmp_path / "hf")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hidden size        32" in result.stdout
