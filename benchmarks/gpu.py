"""GPU benchmark: a bert-base-sized encoder fine-tuned for 3 epochs of CoLA in bf16, timed.

    python benchmarks/gpu.py                        # on one GPU: 12 layers, 768 wide, 3 epochs
    python benchmarks/gpu.py --layers 1 --limit 256 # a quick check (runs on CPU too)
    python benchmarks/gpu.py --compile              # torch.compile the model as well

Self-contained: needs torch and transformers, and the CoLA files in data/cola/ (or --data).
Weights: bert-base-uncased where it is in the local Hugging Face cache, else a random init from
BertConfig (the speed is the same). The tokenizer is the embedded model's (the bert-base-uncased
vocabulary) when the workbench is installed, else bert-base-uncased from the cache, else a simple
hashing word tokenizer (lengths close to WordPiece's; only the speed matters then).

The loop does what the field does on a GPU: all batches tokenized and moved to the device once,
length-grouped and padded to a multiple of 8, SDPA attention, bf16 autocast, fused AdamW,
gradient clipping, linear warm-up/decay, and no host-device sync per step (the loss is summed
on the device and read once per epoch). Prints sentences/s, seconds, holdout MCC and MFU
(6 x matmul parameters x real tokens/s + attention, over the matmul peak measured here at the
model's shapes and over the card's dense bf16 spec where it is known).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, without sparsity).
SPEC_BF16_TFLOPS = {"H100 80GB HBM3": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0,
                    "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def read_cola(path: Path) -> tuple[list[str], list[int]]:
    sentences, labels = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 4:
                labels.append(int(row[1]))
                sentences.append(row[3])
    return sentences, labels


class HashTokenizer:
    """Lower-cased words and punctuation hashed into the vocabulary, with [CLS] (101) and [SEP] (102)."""

    def __init__(self, vocab_size: int = 30522):
        import re

        self.vocab_size = vocab_size
        self.pattern = re.compile(r"\w+|[^\w\s]")

    def __call__(self, sentences: list[str], truncation: bool = True, max_length: int = 128) -> dict:
        ids = []
        for s in sentences:
            words = self.pattern.findall(s.lower())
            body = [1000 + zlib.crc32(w.encode()) % (self.vocab_size - 1000) for w in words][: max_length - 2]
            ids.append([101, *body, 102])
        return {"input_ids": ids}


def load_tokenizer() -> tuple[object, str]:
    try:
        from workbench.core.model import load_tokenizer as workbench_tokenizer

        return workbench_tokenizer("embedded:all-MiniLM-L6-v2"), "embedded all-MiniLM-L6-v2 (bert-base-uncased vocab)"
    except Exception:  # noqa: BLE001 - any failure means: try the next source
        pass
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained("bert-base-uncased", local_files_only=True), "bert-base-uncased"
    except Exception:  # noqa: BLE001
        return HashTokenizer(), "hashing word tokenizer (no WordPiece vocabulary found)"


def load_model(args: argparse.Namespace) -> tuple[object, str]:
    from transformers import BertConfig, BertForSequenceClassification

    if args.layers == 12 and args.hidden == 768 and not args.random:
        try:
            model = BertForSequenceClassification.from_pretrained(
                "bert-base-uncased", num_labels=2, local_files_only=True, attn_implementation="sdpa")
            return model, "bert-base-uncased weights"
        except Exception:  # noqa: BLE001 - no local copy: random init of the same shape
            pass
    config = BertConfig(num_hidden_layers=args.layers, hidden_size=args.hidden, num_attention_heads=args.hidden // 64,
                        intermediate_size=4 * args.hidden, num_labels=2, attn_implementation="sdpa")
    return BertForSequenceClassification(config), "random init from BertConfig"


def batches_by_length(lengths: list[int], batch: int, seed: int) -> list[list[int]]:
    """Shuffled megabatches of 50 batches, sorted by length inside, batches shuffled (as HF does)."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch * 50
    out = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: -lengths[i])
        out += [chunk[k:k + batch] for k in range(0, len(chunk), batch)]
    rng.shuffle(out)
    return out


def to_tensors(ids: list[list[int]], index: list[int], labels: list[int], device: object) -> dict:
    import torch

    width = max(len(ids[i]) for i in index)
    width = (width + 7) // 8 * 8  # multiples of 8 keep tensor-core shapes and limit compile variants
    input_ids = torch.zeros(len(index), width, dtype=torch.long)
    mask = torch.zeros(len(index), width, dtype=torch.long)
    for row, i in enumerate(index):
        input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return {"input_ids": input_ids.to(device, non_blocking=True), "attention_mask": mask.to(device, non_blocking=True),
            "labels": torch.tensor([labels[i] for i in index]).to(device, non_blocking=True)}


def mcc(labels: list[int], predicted: list[int]) -> float:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 1 and p == 1)
    tn = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 0 and p == 0)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 0 and p == 1)
    fn = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 1 and p == 0)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--limit", type=int, default=0, help="first N training sentences (0 = all 8,551)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "cola")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--random", action="store_true", help="random init even if bert-base-uncased is cached")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")

    train_sentences, train_labels = read_cola(args.data / "in_domain_train.tsv")
    holdout_sentences, holdout_labels = read_cola(args.data / "out_of_domain_dev.tsv")
    if args.limit:
        train_sentences, train_labels = train_sentences[: args.limit], train_labels[: args.limit]
    tokenizer, tokenizer_name = load_tokenizer()
    train_ids = tokenizer(train_sentences, truncation=True, max_length=128)["input_ids"]
    holdout_ids = tokenizer(holdout_sentences, truncation=True, max_length=128)["input_ids"]
    model, weights = load_model(args)
    model.to(device)
    parameters = sum(p.numel() for p in model.parameters())
    matmul_parameters = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    print(f"model: {args.layers} layers x {args.hidden}, {parameters / 1e6:.1f} M parameters "
          f"({matmul_parameters / 1e6:.1f} M outside the embeddings), {weights}; tokenizer: {tokenizer_name}")

    lengths = [len(x) for x in train_ids]
    epochs_batches = [[to_tensors(train_ids, b, train_labels, device)
                       for b in batches_by_length(lengths, args.batch_size, args.seed + e)] for e in range(args.epochs)]
    steps = sum(len(b) for b in epochs_batches)
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.learning_rate, eps=1e-8, fused=device.type in ("cuda", "cpu"))
    warmup = math.ceil(0.1 * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    params = list(model.parameters())

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    started = time.perf_counter()
    first_epoch_end = 0.0
    model.train()
    for epoch, batches in enumerate(epochs_batches):
        loss_sum = torch.zeros((), device=device)
        for batch in batches:
            with autocast:
                loss = forward(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach().float()
        mean_loss = float(loss_sum) / len(batches)  # the one sync of the epoch
        elapsed = time.perf_counter() - started
        if epoch == 0:
            first_epoch_end = elapsed
        print(f"  epoch {epoch + 1}: train loss {mean_loss:.4f}, {elapsed:.1f} s", flush=True)
    sync()
    seconds = time.perf_counter() - started

    model.eval()
    predicted: list[int] = []
    order = sorted(range(len(holdout_ids)), key=lambda i: len(holdout_ids[i]))
    with torch.inference_mode(), autocast:
        for start in range(0, len(order), 256):
            index = order[start:start + 256]
            batch = to_tensors(holdout_ids, index, holdout_labels, device)
            batch.pop("labels")
            logits = model(**batch).logits.float().argmax(-1).tolist()
            predicted += logits
    holdout = mcc([holdout_labels[i] for i in order], predicted)

    sentences = len(train_ids) * args.epochs
    real_tokens = sum(lengths) * args.epochs
    mean_len = sum(lengths) / len(lengths)
    flops_per_token = 6 * matmul_parameters + 12 * args.layers * mean_len * args.hidden
    achieved = real_tokens * flops_per_token / seconds
    steady_seconds = seconds - first_epoch_end
    print(f"\n{args.epochs} epochs of CoLA ({len(train_ids)} sentences, {steps} steps, batch {args.batch_size}, "
          f"{args.precision}{', compiled' if args.compile else ''}): {seconds:.1f} s wall-clock, "
          f"{sentences / seconds:.0f} sentences/s")
    if args.epochs > 1:
        print(f"after the first epoch (warm-up, compilation): "
              f"{len(train_ids) * (args.epochs - 1) / steady_seconds:.0f} sentences/s")
    print(f"holdout (out_of_domain_dev) MCC {holdout:.3f}  [random init: expect ~0; only the speed is meant]"
          if "random" in weights else f"holdout (out_of_domain_dev) MCC {holdout:.3f}")
    print(f"model FLOPs: {achieved / 1e12:.2f} TFLOP/s over real tokens ({real_tokens / seconds:.0f} tokens/s)")
    try:
        sys.path.insert(0, str(HERE))
        from matmul_peak import measure_peak

        tokens = args.batch_size * max(8, int(round(mean_len / 8)) * 8)
        peak = measure_peak(tokens=tokens, hidden=args.hidden, ffn=4 * args.hidden)
        key = "bf16" if args.precision == "bf16" and "bf16" in peak else "fp32"
        print(f"matmul peak at the model's shapes ({tokens} tokens), {key}: {peak[key] / 1e3:.1f} TFLOP/s "
              f"-> MFU {achieved / (peak[key] * 1e9):.1%}")
    except Exception as err:  # noqa: BLE001 - the peak is extra; report and go on
        print(f"(matmul peak not measured: {err})")
    if device.type == "cuda":
        spec = next((v for k, v in SPEC_BF16_TFLOPS.items() if k in name), None)
        if spec and args.precision == "bf16":
            print(f"MFU against the {name} data-sheet dense bf16 peak ({spec:.0f} TFLOP/s): "
                  f"{achieved / (spec * 1e12):.1%}")
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    print(f"goal: 3 epochs in under 60 s -> {'met' if seconds < 60 else 'missed'} ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
