"""What a fresh Python process loads: the core runs without a screen (importing it, training and
predicting never import Textual), the app and the explore modules start without torch, two threads
loading a tokenizer and a model at once both succeed, no GPU driver means no output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workbench.core.base.system import SystemMonitor


def exits_0(code: str, timeout: float) -> None:
    """CODE run by a fresh Python exits 0 (what it printed is the failure's message)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_never_imports_textual() -> None:
    code = (
        "import sys\n"
        "import importlib, pkgutil, workbench.core, workbench.cli\n"
        "for info in pkgutil.walk_packages(workbench.core.__path__, 'workbench.core.'):\n"
        "    importlib.import_module(info.name)\n"
        "import workbench.core.training.prepare as t\n"
        "t.encode  # touch the module\n"
        "from workbench.core.data.cola import load_cola; load_cola()\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    exits_0(code, timeout=120)


def test_training_evaluating_and_predicting_never_import_textual(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Not only the imports at module level: a whole tiny training through train() (its final
    evaluation included) and a prediction, then Textual must still be absent."""
    code = (
        "import sys\n"
        "from workbench.core.base.config import TrainConfig\n"
        "from workbench.core.model.predict import Predictor\n"
        "from workbench.core.training.train import train\n"
        f"config = TrainConfig(model={str(tiny_model_dir)!r}, epochs=1, batch_size=16, train_limit=32,\n"
        "                     precision='fp32', eval_batch_size=256)\n"
        f"assert train(config, {str(tmp_path / 'run')!r}).status == 'done'\n"
        f"Predictor.load({str(tmp_path / 'run')!r}).predict_one('The cat sat on the mat.')\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def test_two_threads_loading_a_tokenizer_and_a_model_at_once_import_transformers_one_at_a_time() -> None:
    """The TUI's workers load the tokenizer and a model together in a fresh process; transformers' lazy
    imports once failed there ("cannot import name 'AutoTokenizer'") about one start in three, when the two
    threads imported its auto classes together. Made deterministic: an import hook holds the first thread
    inside the import of the tokenizer's auto module (up to 2 s, or until another thread imports any part
    of transformers) and records whether the other thread imported transformers meanwhile. It must not
    have (it waits for the first), and both loads succeed. With each load importing its own auto class
    unguarded (the code before the fix) the other thread fails every time with the original
    "cannot import name 'AutoModelForSequenceClassification'" (3 of 3 tries)."""
    import subprocess
    import sys

    script = """
import sys, threading, time
from importlib.abc import MetaPathFinder
HELD = "transformers.models.auto.tokenization_auto"
state = {"holder": None, "others": []}
others_arrived = threading.Event()

class Hold(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        me = threading.current_thread().name
        if not name.startswith("transformers"):
            return None
        if state["holder"] not in (None, "released", me):
            state["others"].append(f"{me}:{name}")
            others_arrived.set()
        elif name == HELD and state["holder"] is None:
            state["holder"] = me
            others_arrived.wait(2.0)
            state["holder"] = "released"
        return None

sys.meta_path.insert(0, Hold())
from workbench.core.model import loading as m
errors = []
def run(load):
    try:
        load("embedded:all-MiniLM-L6-v2")
    except Exception as err:
        errors.append(f"{type(err).__name__}: {err}")
threads = [threading.Thread(target=run, args=(f,), name=f.__name__) for f in (m.load_tokenizer, m.load_model)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(state["holder"], errors or "ok", sorted(set(state["others"]))[:5])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "released ok []", out.stdout + out.stderr[-2000:]


def test_importing_the_new_modules_loads_no_torch_captum_or_textual() -> None:
    code = (
        "import sys\n"
        "import workbench.core.explore.explain, workbench.core.evaluation.slices\n"
        "import workbench.core.explore.diff, workbench.core.explore.neighbors\n"
        "import workbench.cli.explore, workbench.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'captum', 'textual'))\n"
        "print(bad[:5])\n"
        "sys.exit(1 if bad else 0)\n"
    )
    exits_0(code, timeout=120)


def test_importing_recorded_imports_no_textual_and_no_pandas() -> None:
    code = (
        "import sys, workbench.core.evaluation.recorded;"
        " bad = [m for m in ('textual', 'pandas') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    exits_0(code, timeout=60)


def test_importing_the_app_loads_no_heavy_library() -> None:
    code = (
        "import sys, workbench.tui.app; heavy = [m for m in ('torch', 'transformers', 'pandas', 'sklearn') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    exits_0(code, timeout=60)


def test_without_a_gpu_driver_it_is_quiet() -> None:
    """This machine has nvidia-ml-py but no NVIDIA driver: no GPU part, no exception, no output."""
    code = (
        "from workbench.core.base.system import SystemMonitor\n"
        "s = SystemMonitor().sample()\n"
        "import sys; print(len(s.gpus)); print('textual' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    gpus, textual_loaded = result.stdout.split()
    assert textual_loaded == "False"
    if gpus != "0":  # a machine with a GPU: then the line names it
        assert "GPU0" in SystemMonitor().sample().describe()


def test_showing_the_data_and_its_tokens_imports_no_sklearn_torch_or_transformers() -> None:
    """What the Data pane does before it says "ready" (load CoLA, split it, count and show tokens) costs
    no sklearn/scipy (2 s) and no torch or transformers (3-4 s)."""
    code = (
        "import sys\n"
        "from workbench.core.data.cola import load_cola, token_lengths\n"
        "from workbench.core.model.loading import load_word_pieces, tokenize\n"
        "cola = load_cola()\n"
        "pieces = load_word_pieces('embedded:all-MiniLM-L6-v2')\n"
        "assert len(token_lengths(pieces, cola['train']['sentence'].tolist())) == len(cola['train'])\n"
        "assert tokenize(pieces, 'The book was written by John.')[0][0] == '[CLS]'\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'torch', 'transformers') if m in sys.modules]\n"
        "print(heavy); sys.exit(1 if heavy else 0)\n"
    )
    exits_0(code, timeout=120)
