"""GPU benchmark: the workbench's own `train()` fine-tuning a bert-base-sized encoder for 3 epochs of CoLA in bf16,
eager and compiled, beside `transformers.Trainer` at its best settings on the same model, in one process.

    python benchmarks/gpu.py                 # on one GPU: 12 layers x 768 (110 M parameters), 3 epochs, bf16
    python benchmarks/gpu.py --arms workbench,trainer
    python benchmarks/gpu.py --quick         # a check that runs anywhere, CPU included (2 x 128, 256 sentences)
    python benchmarks/gpu.py --json out.json

Arms, run in this order in one process (`--arms` picks some):
  workbench     exactly `workbench.core.training.train.train(TrainConfig(...), run_dir)`, the call the CLI and
                the TUI make: its data split, length-grouped batches, Accelerate bf16 autocast, fused AdamW
                with the clip folded in, per-epoch validation, checkpoint and best-model saves, the final
                evaluation
  compile       the same with `--compile inductor` (Accelerate's regional compilation, dynamic shapes), from
                an empty inductor cache (TORCHINDUCTOR_CACHE_DIR is a new temporary folder): the cold start
  compile_warm  the same again, the cache now warm. In the same process, so inductor's in-memory caches
                and its compile workers are warm too: a new process on the same machine (a second run)
                also pays their start, so it waits somewhat longer than this arm
  trainer       `transformers.Trainer` with dynamic padding, length grouping, its default fused AdamW and
                bf16 (benchmarks/bench_common.py `run_trainer`, the peer of benchmarks/throughput.py)

Only the model differs from the default: a bert-base-sized BertForSequenceClassification initialised at
random from a BertConfig and saved to a temporary folder (the GPU machine has no hub; the speed does not
depend on the weights, so the MCC it prints means nothing). The tokenizer is the embedded model's (the
bert-base-uncased WordPiece vocabulary); without the embedded package, a word-level vocabulary built from
CoLA itself.

Prints per arm, and writes with --json:
  training step  what the workbench's run says it ran (its "each step:" log line: precision, the AdamW
               kernel, the step's levers) and Accelerate's mixed precision, so a device run shows each lever
               reached the model
  seconds      the arm's wall-clock for all epochs, everything included (what a user waits for), and the time
               in training steps alone (steady rate x sentences; validation, checkpoints and the final
               evaluation are the difference)
  sentences/s  steady: per epoch, from the end of its first step to the end of its last (the first
               --warmup steps of the run left out: CUDA context, allocator and kernel selection)
  MFU          model FLOPs (6 x matmul parameters + attention, over real tokens only) / the card's dense
               bf16 peak (H100 SXM: 989 TFLOP/s), and / the matmul peak measured here at the model's shapes
  peak memory  torch.cuda.max_memory_allocated() (on CPU: the process's peak RSS)

Step times come from train()'s own step events. On a GPU train() reads the loss and gradient norm every
10 steps (READ_EVERY_ON_DEVICE) in one read; a step's time is when it was launched, except the last step
before each read, whose time is when the read returned (the device had finished it). Every epoch's last
step is read at once, so each per-epoch window ends at a sync; its start can be early by at most the
steps queued on the device (< 10 of an epoch's 240).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import bench_common as bc  # noqa: E402

import workbench  # noqa: E402,F401  # before torch: its allocator settings

# Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, without sparsity).
SPEC_BF16_TFLOPS = {
    "H100 80GB HBM3": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
}


def word_vocab_tokenizer(folder: Path) -> Any:
    """A WordPiece tokenizer whose vocabulary is CoLA's own words (when the embedded one is missing)."""
    from transformers import BertTokenizerFast

    from workbench.core.data.cola import load_cola

    words: Counter[str] = Counter()
    for frame in load_cola().values():
        for sentence in frame["sentence"]:
            words.update(re.findall(r"\w+|[^\w\s]", sentence.lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)


def make_model_folder(folder: Path, layers: int, hidden: int, heads: int) -> tuple[str, int]:
    """Save a randomly initialised BERT classifier of the given size, with a tokenizer, into FOLDER."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from workbench.core.model.loading import ID2LABEL, LABEL2ID, ModelError, load_tokenizer

    try:
        tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
        tokenizer_name = "embedded all-MiniLM-L6-v2 (bert-base-uncased WordPiece vocabulary)"
    except ModelError:
        tokenizer = word_vocab_tokenizer(folder)
        tokenizer_name = "a word-level vocabulary built from CoLA (embedded model package missing)"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=max(30522, len(tokenizer)),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=512,
        num_labels=2,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return tokenizer_name, sum(p.numel() for p in model.parameters())


def steady_rate(marks: bc.Marks, epoch_ends: list[int], warmup: int) -> tuple[float, float, int]:
    """(sentences/s, seconds, steps) over each epoch's steps after its first (and the run's first WARMUP)."""
    seconds, sentences, steps, start = 0.0, 0, 0, 0
    for end in epoch_ends:
        first = max(start, warmup) if start == 0 else start
        if end - first >= 2:
            seconds += marks.times[end - 1] - marks.times[first]
            sentences += sum(marks.sentences[first + 1 : end])
            steps += end - 1 - first
        start = end
    return (sentences / seconds if seconds else float("nan")), seconds, steps


ARMS = ("workbench", "compile", "compile_warm", "trainer")
ARM_TITLES = {
    "workbench": "workbench train(), eager",
    "compile": "workbench train() --compile BACKEND, cold cache",
    "compile_warm": "workbench train() --compile BACKEND, warm cache",
    "trainer": "transformers.Trainer best (dynamic padding, length grouping, fused AdamW)",
}


def compile_seconds(run: Path) -> float | None:
    """The run's own 'compiled in N s' log line, or None (no compile, or it failed)."""
    from workbench.core.runs.metrics import read_metrics

    for event in read_metrics(run):
        found = re.match(r"compiled in ([0-9.]+) s", str(event.get("message", ""))) if event["kind"] == "log" else None
        if found:
            return float(found.group(1))
    return None


def run_arm(arm: str, folder: Path, tmp: Path, args: argparse.Namespace) -> tuple[bc.Marks, dict[str, Any]]:
    """One arm on the model in FOLDER: its step marks and (wall_s, epoch_ends, history, compile_s, precision)."""
    import time

    if arm == "trainer":
        started = time.perf_counter()
        import torch

        from workbench.core.base.hardware import resolve_precision

        device = "cuda" if torch.cuda.is_available() else "cpu"
        precision = "bf16" if resolve_precision(args.precision, device) == "bf16" else "fp32"  # as train() picks
        marks, _model = bc.run_trainer(
            str(folder), args.limit, args.epochs, 0, best=True, bf16=precision == "bf16", out_dir=tmp / arm
        )
        wall_s = time.perf_counter() - started
        per_epoch = len(marks.times) // max(1, args.epochs)  # every epoch has the same number of steps
        ends = [per_epoch * (e + 1) for e in range(args.epochs)]
        info = {"wall_s": wall_s, "epoch_ends": ends, "history": [], "compile_s": None, "precision": precision}
        return marks, info | {"mixed_precision": None, "training_step": None}  # the Trainer's run says neither
    overrides: dict[str, Any] = {"precision": args.precision, "batch_size": bc.BATCH}  # the Trainer's batch too
    if arm.startswith("compile"):
        overrides["compile"] = args.backend
    marks, info = bc.run_workbench(str(folder), args.limit, args.epochs, tmp / arm, overrides)
    info["compile_s"] = compile_seconds(tmp / arm)
    return marks, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=0, help="attention heads (0 = hidden / 64)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="first N training sentences (0 = all 7,695)")
    parser.add_argument("--precision", choices=["bf16", "fp32", "auto"], default="bf16")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, in this order: {', '.join(ARMS)}")
    parser.add_argument("--backend", default="inductor", help="the compile arms' torch.compile backend")
    parser.add_argument("--warmup", type=int, default=5, help="first steps of the run left out of the rate")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 layers x 128, 256 sentences, 1 epoch, precision auto: a check that runs on CPU",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    parser.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.layers, args.hidden, args.limit, args.epochs, args.warmup = 2, 128, args.limit or 256, 1, 2
        args.precision = "auto" if "--precision" not in sys.argv else args.precision
    heads = args.heads or max(1, args.hidden // 64)
    arms = [a for a in args.arms.split(",") if a]
    if unknown := set(arms) - set(ARMS):
        raise SystemExit(f"unknown arm(s) {', '.join(sorted(unknown))}; the arms are {', '.join(ARMS)}")

    if "compile_warm" in arms and "compile" not in arms:
        raise SystemExit("compile_warm reads the cache the compile arm fills: run both (--arms compile,compile_warm)")
    import os
    import shutil

    # "compile" starts from empty caches, "compile_warm" reads what it wrote (set before torch is imported)
    cache = tempfile.mkdtemp(prefix="gpu-bench-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    os.environ["TRITON_CACHE_DIR"] = str(Path(cache) / "triton")
    import torch

    from workbench.core.model.loading import load_model, quiet_transformers

    quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"cpu: {bc.machine()}"
    print(f"device: {device}{'' if not cuda else f'; torch {torch.__version__}'}; load {bc.loadavg():.2f}", flush=True)
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        tokenizer_name, parameters = make_model_folder(folder, args.layers, args.hidden, heads)
        model = load_model(str(folder))
        print(
            f"model: {args.layers} layers x {args.hidden}, {parameters / 1e6:.1f} M parameters, random init "
            f"from BertConfig; tokenizer: {tokenizer_name}; arms in this order: {', '.join(arms)}",
            flush=True,
        )
        for arm in arms:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            marks, info = run_arm(arm, folder, Path(tmp), args)
            memory = torch.cuda.max_memory_allocated() / 2**30 if cuda else bc.peak_rss_mb() / 1024
            reports[arm] = arm_report(arm, marks, info, model, memory, args)
            print_arm(arm, reports[arm], cuda, flush=True)
    peak: dict[str, float] = {}
    if not args.no_peak and reports:
        from matmul_peak import measure_peak

        mean_len = next(iter(reports.values()))["mean_real_len"]
        peak = measure_peak(tokens=bc.BATCH * max(8, int(round(mean_len))), hidden=args.hidden, ffn=4 * args.hidden)
    spec = next((v for k, v in SPEC_BF16_TFLOPS.items() if k in device), None) if cuda else None
    dtype = "bf16" if args.precision == "bf16" or (args.precision == "auto" and "bf16" in peak) else "fp32"
    print(
        f"\n{args.epochs} epoch(s) of CoLA, {args.layers} x {args.hidden} ({parameters / 1e6:.1f} M), "
        f"batch {bc.BATCH}, {args.precision}, on {device}"
    )
    if spec:
        print(f"MFU against the data-sheet dense bf16 peak: {spec:.0f} TFLOP/s")
    if dtype in peak:
        print(
            f"MFU against the matmul peak measured here at the model's shapes ({dtype}): "
            f"{peak[dtype] / 1e3:.2f} TFLOP/s"
        )
    print("| arm | wall s (all in) | compile s | steps s | sentences/s | MFU (sheet) | MFU (measured) | peak GiB |")
    print("|---|---|---|---|---|---|---|---|")
    base = reports.get("trainer", {}).get("sentences_per_s")
    for arm, r in reports.items():
        r["mfu_spec"] = r["model_tflops"] * 1e12 / (spec * 1e12) if spec else None
        r["mfu_measured_peak"] = r["model_tflops"] * 1e12 / (peak[dtype] * 1e9) if dtype in peak else None
        versus = f" ({r['sentences_per_s'] / base:.2f}x Trainer)" if base and arm != "trainer" else ""
        print(
            f"| {ARM_TITLES[arm].replace('BACKEND', args.backend)} | {r['train_wall_s']:.1f} | "
            f"{seconds(r['compile_s'])} | {r['step_seconds']:.1f} | "
            f"{r['sentences_per_s']:.0f}{versus} | {percent(r['mfu_spec'])} | {percent(r['mfu_measured_peak'])} | "
            f"{r['peak_memory_gib']:.2f} |"
        )
    wb = reports.get("workbench")
    if wb and args.epochs == 3 and args.layers == 12 and args.hidden == 768 and not args.limit:
        wall = wb["train_wall_s"]
        print(f"goal: bert-base, 3 epochs of CoLA < 60 s -> {'met' if wall < 60 else 'missed'} ({wall:.1f} s, eager)")
    shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        summary = {"device": device, "torch": torch.__version__, "parameters": parameters, "arms": reports}
        summary.update(spec_tflops=spec, matmul_peak_gflops=peak, load=bc.loadavg())
        args.json.write_text(json.dumps(summary, indent=2))


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def arm_report(
    arm: str, marks: bc.Marks, info: dict[str, Any], model: Any, memory_gib: float, args: argparse.Namespace
) -> dict[str, Any]:
    rate, window_s, window_steps = steady_rate(marks, info["epoch_ends"], args.warmup)
    sentences = sum(marks.sentences)
    mean_len = sum(marks.real_tokens) / max(1, sentences)
    flops_per_token = bc.train_flops_per_token(model, mean_len)
    return {
        "arm": arm,
        "backend": args.backend if arm.startswith("compile") else None,
        "epochs": args.epochs,
        "precision": info["precision"],
        "mixed_precision": info["mixed_precision"],  # what the run itself used (Accelerate's name)
        "training_step": info["training_step"],  # the run's own "each step:" log line (its kernel and levers)
        "sentences": sentences,
        "steps": len(marks.times),
        "train_wall_s": info["wall_s"],
        "compile_s": info["compile_s"],
        "step_seconds": sentences / rate,
        "sentences_per_s": rate,
        "window_s": window_s,
        "window_steps": window_steps,
        "mean_real_len": mean_len,
        "model_tflops": rate * mean_len * flops_per_token / 1e12,
        "peak_memory_gib": memory_gib,
        "validation_mcc": [h["val_mcc"] for h in info["history"]],
        "load": bc.loadavg(),
    }


def print_arm(arm: str, r: dict[str, Any], cuda: bool, flush: bool = True) -> None:
    compiled = "" if r["compile_s"] is None else f", of which compile {r['compile_s']:.1f} s"
    print(
        f"{ARM_TITLES[arm].replace('BACKEND', str(r['backend']))}: {r['train_wall_s']:.1f} s all in{compiled}; "
        f"{r['step_seconds']:.1f} s in steps "
        f"({r['sentences_per_s']:.0f} sentences/s steady over {r['window_steps']} steps); "
        f"{r['model_tflops']:.2f} TFLOP/s; peak {'GPU memory' if cuda else 'RSS'} {r['peak_memory_gib']:.2f} GiB",
        flush=flush,
    )
    if r["training_step"]:
        print(f"  each step: {r['training_step']}", flush=flush)


if __name__ == "__main__":
    main()
