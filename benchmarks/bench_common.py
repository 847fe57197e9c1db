"""Shared pieces of the benchmarks: the data, the four training recipes, timing and machine facts.

Every recipe trains the same model (the embedded all-MiniLM-L6-v2 unless --model says otherwise)
on the same sentences (the seeded train part of CoLA `in_domain_train`, 7,695 sentences) at batch 32,
and reports per-step wall-clock marks plus the real (non-padding) and padded tokens of every step,
so throughput and model FLOPs utilisation are computed the same way for all of them.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BATCH = 32
SEED = 42
# The seed notebook's optimiser settings (BERT fine-tuning on CoLA): AdamW lr 2e-5, eps 1e-8,
# linear warm-up over 10% of the steps then linear decay, weight decay 0.01 except biases and
# LayerNorm weights, gradient clipping at 1.0, every sentence padded to 128 tokens, fp32.
SEED_LR = 2e-5
SEED_MAX_LEN = 128


def machine() -> str:
    """One line naming the CPU, the core count, torch and its thread count."""
    import torch

    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = (
        "AMX bf16"
        if "amx_bf16" in flags
        else "AVX-512 BF16"
        if "avx512_bf16" in flags
        else "AVX-512"
        if "avx512f" in flags
        else ""
    )
    return (
        f"{cpu} ({os.cpu_count()} cores{', ' + isa if isa else ''}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def has_amx() -> bool:
    """Whether the CPU has AMX bf16 tiles (several times the bf16 matmul rate of AVX-512 BF16)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_sentences(limit: int = 0) -> tuple[list[str], list[int]]:
    """The workbench's train part of in_domain_train (seeded 90/10 split), optionally the first LIMIT."""
    from workbench.core.data.cola import load_cola

    frame = load_cola()["train"]
    if limit:
        frame = frame.iloc[:limit]
    return frame["sentence"].tolist(), [int(x) for x in frame["label"].tolist()]


def model_name(name: str | None) -> str:
    from workbench.core.base.config import DEFAULT_MODEL

    return name or DEFAULT_MODEL


def matmul_parameters(model: Any) -> int:
    """Parameters that take part in matmuls: everything but the embedding tables."""
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)


def train_flops_per_token(model: Any, seq_len: float) -> float:
    """Training FLOPs per real token: 6 x matmul parameters + attention scores (6 x 2 x layers x len x width)."""
    config = model.config
    attention = 12 * config.num_hidden_layers * seq_len * config.hidden_size
    return 6 * matmul_parameters(model) + attention


@dataclass
class Marks:
    """Wall-clock time after each optimizer step, with that step's sentences and tokens."""

    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds, robust-ish to other load
    sentences: list[int] = field(default_factory=list)
    real_tokens: list[int] = field(default_factory=list)
    padded_tokens: list[int] = field(default_factory=list)

    def steady(self, warmup: int) -> dict[str, float]:
        """Rates over the steps after the first WARMUP (timed from the end of step WARMUP)."""
        if len(self.times) <= warmup + 1:
            raise SystemExit(f"only {len(self.times)} steps timed; need more than warm-up {warmup} + 1")
        seconds = self.times[-1] - self.times[warmup - 1] if warmup else self.times[-1] - self.times[0]
        first = warmup if warmup else 1
        sentences = sum(self.sentences[first:])
        real = sum(self.real_tokens[first:])
        padded = sum(self.padded_tokens[first:])
        cpu = self.cpu[-1] - self.cpu[warmup - 1 if warmup else 0] if self.cpu else float("nan")
        return {
            "steps": len(self.times) - first,
            "seconds": seconds,
            "sentences": sentences,
            "sentences_per_s": sentences / seconds,
            "sentences_per_cpu_s": sentences / cpu,
            "real_tokens_per_s": real / seconds,
            "padded_tokens_per_s": padded / seconds,
            "mean_real_len": real / max(1, sentences),
            "padding_share": 1 - real / max(1, padded),
        }


def mark(marks: Marks) -> None:
    marks.times.append(time.perf_counter())
    marks.cpu.append(time.process_time())


class CountingCollator:
    """Wraps a collator and records each batch's sentences, real and padded tokens, in order."""

    def __init__(self, inner: Any, marks: Marks):
        self.inner = inner
        self.marks = marks

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        batch = self.inner(rows)
        mask = batch["attention_mask"]
        self.marks.sentences.append(int(mask.shape[0]))
        self.marks.real_tokens.append(int(mask.sum()))
        self.marks.padded_tokens.append(int(mask.numel()))
        return batch


def encode_rows(tokenizer: Any, sentences: list[str], labels: list[int], pad_to: int = 0) -> list[dict[str, Any]]:
    if pad_to:
        encoded = tokenizer(sentences, truncation=True, max_length=pad_to, padding="max_length")
    else:
        encoded = tokenizer(sentences, truncation=True, max_length=SEED_MAX_LEN)
    return [{**{k: encoded[k][i] for k in encoded.keys()}, "labels": labels[i]} for i in range(len(sentences))]


# ---------------------------------------------------------------- 1. the workbench


def run_workbench(
    model: str, limit: int, epochs: int, run_dir: Path, overrides: dict[str, Any] | None = None
) -> tuple[Marks, dict[str, Any]]:
    """The workbench's own training path with its defaults, at batch BATCH as every recipe compared here
    (a run's batch_size 0 picks 8 for a single epoch) unless OVERRIDES say otherwise; step marks from its
    step events."""
    from workbench.core.base.config import TrainConfig
    from workbench.core.base.events import TRAINING_STEP
    from workbench.core.model.loading import load_tokenizer
    from workbench.core.training.optim import LengthGroupedSampler
    from workbench.core.training.prepare import encode
    from workbench.core.training.train import train

    config = TrainConfig(model=model, epochs=epochs, train_limit=limit, **{"batch_size": BATCH, **(overrides or {})})
    sentences, labels = train_sentences(limit)
    rows = encode(load_tokenizer(model), sentences, labels, config.max_length)
    lengths = [len(r["input_ids"]) for r in rows]
    marks = Marks()
    # The batches the workbench will draw, rebuilt from its own sampler, for the token counts.
    batch = config.effective_batch_size  # (batch_size 0: the run picks it by the epochs)
    for epoch in range(epochs):
        sampler = LengthGroupedSampler(lengths, batch, config.seed)
        sampler.set_epoch(epoch)
        order = list(sampler)
        for start in range(0, len(order), batch):
            chunk = [lengths[i] for i in order[start : start + batch]]
            marks.sentences.append(len(chunk))
            marks.real_tokens.append(sum(chunk))
            marks.padded_tokens.append(max(chunk) * len(chunk))
    epoch_ends: list[int] = []
    ran: dict[str, Any] = {"mixed_precision": None, "training_step": None}  # what the run says it ran

    def on_event(event: dict[str, Any]) -> None:
        if event["kind"] == "step":
            mark(marks)
        elif event["kind"] == "epoch":
            epoch_ends.append(len(marks.times))
        elif event["kind"] == "start":
            ran["mixed_precision"] = event["precision"]
        elif event["kind"] == "log" and event["message"].startswith(TRAINING_STEP):
            ran["training_step"] = event["message"][len(TRAINING_STEP) :].strip()

    started = time.perf_counter()
    result = train(config, run_dir, on_event=on_event)
    wall_s = time.perf_counter() - started
    if result.status != "done":
        raise SystemExit(f"workbench training ended {result.status}: {result.error}")
    return marks, {
        "holdout_mcc": result.final.get("holdout_mcc"),
        "best_epoch": result.best_epoch,
        "precision": config.precision,
        "epoch_ends": epoch_ends,
        "wall_s": wall_s,
        "history": result.history,
        **ran,
    }


# ---------------------------------------------------------------- 2. the seed notebook's recipe


def grouped_parameters(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def run_seed(
    model_id: str, limit: int, epochs: int, max_steps: int, pad_to: int = SEED_MAX_LEN, lr: float = SEED_LR
) -> tuple[Marks, Any]:
    """The seed notebook: pad every sentence to 128, shuffled batches, plain PyTorch loop, AdamW, fp32.

    PAD_TO=0 pads each batch to its longest sentence instead (same maths: padding is masked out),
    which the quality benchmark uses to afford whole epochs."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from workbench.core.model.loading import load_model, load_tokenizer

    torch.manual_seed(SEED)
    tokenizer = load_tokenizer(model_id)
    model = load_model(model_id)
    sentences, labels = train_sentences(limit)
    marks = Marks()
    if pad_to:
        encoded = tokenizer(sentences, truncation=True, max_length=pad_to, padding="max_length", return_tensors="pt")
        dataset = torch.utils.data.TensorDataset(encoded["input_ids"], encoded["attention_mask"], torch.tensor(labels))

        def collate(items: list[Any]) -> dict[str, Any]:
            ids, mask, y = (torch.stack(t) for t in zip(*items, strict=True))
            return {"input_ids": ids, "attention_mask": mask, "labels": y}
    else:
        from transformers import DataCollatorWithPadding

        dataset = encode_rows(tokenizer, sentences, labels)
        collate = DataCollatorWithPadding(tokenizer)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        collate_fn=CountingCollator(collate, marks),
        generator=torch.Generator().manual_seed(SEED),
    )
    total = len(loader) * epochs if not max_steps else max_steps
    optimizer = torch.optim.AdamW(grouped_parameters(model, 0.01), lr=lr, eps=1e-8)  # torch's default impl
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(0.1 * total), total)
    model.train()
    step = 0
    for _ in range(epochs if not max_steps else 10**9):
        for batch in loader:
            loss = model(**batch).loss
            loss_value = loss.item()  # the notebook accumulates the loss every step
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            mark(marks)
            step += 1
            del loss_value
            if step >= total:
                break
        if step >= total:
            break
    del marks.sentences[step:], marks.real_tokens[step:], marks.padded_tokens[step:]
    return marks, model


# ---------------------------------------------------------------- 3 and 4. transformers.Trainer


def run_trainer(
    model_id: str, limit: int, epochs: int, max_steps: int, best: bool, bf16: bool, out_dir: Path, lr: float = SEED_LR
) -> tuple[Marks, Any]:
    """transformers.Trainer. BEST=False: as run_glue.py runs it by default (pad to max length 128,
    default collator, random batches, fp32). BEST=True: dynamic padding, group_by_length, its default
    fused AdamW, and bf16 mixed precision when BF16."""
    import torch
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    from workbench.core.model.loading import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_id)
    model = load_model(model_id)
    sentences, labels = train_sentences(limit)
    rows = encode_rows(tokenizer, sentences, labels, pad_to=0 if best else SEED_MAX_LEN)
    marks = Marks()
    collator = CountingCollator(DataCollatorWithPadding(tokenizer) if best else default_data_collator, marks)

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            mark(marks)

    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=BATCH,
        num_train_epochs=epochs,
        max_steps=max_steps or -1,
        learning_rate=lr,
        warmup_steps=0.1,
        weight_decay=0.01,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        seed=SEED,
        use_cpu=not torch.cuda.is_available(),
        bf16=bf16,
        train_sampling_strategy="group_by_length" if best else "random",
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        logging_strategy="no",
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=[StepClock()])
    trainer.train()
    steps = len(marks.times)
    del marks.sentences[steps:], marks.real_tokens[steps:], marks.padded_tokens[steps:]
    return marks, trainer.model


def holdout_mcc(model: Any, model_id: str) -> float:
    """MCC of MODEL on the holdout (out_of_domain_dev), evaluated the workbench's way, in fp32."""
    import torch

    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import evaluate_frame
    from workbench.core.model.loading import load_tokenizer

    model = model.float().eval()
    with torch.autocast("cpu", enabled=False):
        report = evaluate_frame(model, load_tokenizer(model_id), load_cola()["holdout"], "holdout", 128, 128)
    return float(report.mcc)
