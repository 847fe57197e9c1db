"""Batch scoring against its floor: how close `predict` of many sentences and `pairs` come to the time
their matmuls need at this machine's fp32 matmul rate.

    python benchmarks/scoring_floor.py [--sentences 1000] [--pairs 3350] [--rounds 3] [--threads N]

Two jobs, each scored by the default (fp32, `pipeline()`-equal) path the CLI takes, the model loaded once:
- predict: the first SENTENCES of CoLA's in_domain_dev and out_of_domain_dev through `Predictor.predict_many`
  (what `workbench predict RUN < FILE` runs);
- pairs: a suite of PAIRS minimal pairs (data/pairs/example.tsv, each pair with a different name and number
  appended, so every sentence is distinct) through `score_suite` (what `workbench pairs` runs).

The floor is computed from the real batches: the scorer's own batching (sorted by tokens, dynamically padded)
is replayed with the tokenizer, and each batch's forward FLOPs are 2 x the matmul parameters x its padded
tokens plus the attention products (4 x layers x width x length^2 per sentence). It is divided by the fp32
rate this process measures at the model's forward shapes (batch tokens x 384 by 384 x 384, 384 x 1536,
1536 x 384, as linear layers and as plain matmuls, the faster of the two: the FLOP-weighted rate, best of several
repeats), for each batch at the power of 2 nearest its token count. The
unpadded floor (real tokens only) is printed beside. Arms alternate per round; medians are reported.
Run it on quiet cores."""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402
from matmul_peak import best_seconds, rate  # noqa: E402
from pairs_speed import make_suite  # noqa: E402


def linear_rate(m: int, k: int, n: int) -> float:
    """GFLOP/s of the model's own op, a linear layer (x @ W^T + b, W stored n x k) on an m x k input, in
    inference mode: the best of 7 timed runs."""
    import torch

    x, weight, bias = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
    with torch.inference_mode():
        best = best_seconds(lambda: torch.nn.functional.linear(x, weight, bias), runs=7, warmup=5)
    return 2 * m * k * n / best / 1e9


def forward_rate(tokens: int, hidden: int, ffn: int) -> float:
    """FLOP-weighted fp32 GFLOP/s of one encoder layer's forward linear layers at TOKENS rows (the best of
    this and the plain matmul, matmul_peak.rate, per shape)."""
    import torch

    shapes = [(tokens, hidden, hidden)] * 4 + [(tokens, hidden, ffn), (tokens, ffn, hidden)]
    flops = seconds = 0.0
    for m, k, n in shapes:
        g = max(linear_rate(m, k, n), rate(m, k, n, torch.float32, "cpu"))
        flops += 2 * m * k * n
        seconds += 2 * m * k * n / (g * 1e9)
    return flops / seconds / 1e9


def batches(tokenizer: Any, sentences: list[str], batch_size: int, max_length: int) -> list[tuple[int, int, int]]:
    """(sentences, padded length, real tokens) of each batch as the scorers make them: sorted by tokens,
    padded to the batch's longest."""
    lengths = sorted(len(ids) for ids in tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"])
    out = []
    for start in range(0, len(lengths), batch_size):
        chunk = lengths[start : start + batch_size]
        out.append((len(chunk), max(chunk), sum(chunk)))
    return out


def batch_flops(model: Any, n: int, length: int, real: int, padded: bool = True) -> float:
    """Forward FLOPs of one batch of N sentences padded to LENGTH tokens (REAL of them not padding)."""
    config = model.config
    tokens = n * length if padded else real
    seq = length if padded else real / n
    return 2 * bc.matmul_parameters(model) * tokens + 4 * config.num_hidden_layers * config.hidden_size * seq * seq * n


def bucket(tokens: int) -> int:
    """The power of 2 nearest TOKENS (the rows of a batch's matmuls), from 128 up."""
    return max(128, 2 ** round(math.log2(max(1, tokens))))


def floor_seconds(model: Any, shape: list[tuple[int, int, int]], rates: dict[int, float], padded: bool = True) -> float:
    """Each batch's forward FLOPs at the rate measured for its bucket of rows."""
    return sum(
        batch_flops(model, n, length, real, padded) / (rates[bucket(n * length)] * 1e9) for n, length, real in shape
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3350)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from workbench.core.data.cola import load_cola
    from workbench.core.explore.pairs import BATCH_SIZE, load_suite, score_suite
    from workbench.core.model.predict import PREDICT_BATCH, Predictor

    print(f"{bc.machine()}; load average {bc.loadavg():.2f}")
    predictor = Predictor.load(bc.model_name(None))  # the embedded model, fp32
    model, tokenizer = predictor.model, predictor.tokenizer
    splits = load_cola()
    sentences = (splits["in_domain_dev"]["sentence"].tolist() + splits["holdout"]["sentence"].tolist())[
        : args.sentences
    ]
    folder = Path(tempfile.mkdtemp())
    suite_path = make_suite(folder, args.pairs)
    suite = load_suite(suite_path)
    pair_sentences = sorted(set(suite.pairs["good"]) | set(suite.pairs["bad"]))

    jobs = {
        "predict": (lambda: predictor.predict_many(sentences), sentences, PREDICT_BATCH, predictor.max_length),
        "pairs": (lambda: score_suite(model, tokenizer, load_suite(suite_path)), pair_sentences, BATCH_SIZE, 512),
    }
    floors: dict[str, tuple[float, float, float]] = {}
    rates: dict[int, float] = {}  # fp32 GFLOP/s by rows of a batch's matmuls
    for name, (_, texts, batch_size, max_length) in jobs.items():
        shape = batches(tokenizer, texts, batch_size, max_length)
        for rows in sorted({bucket(n * length) for n, length, _ in shape} - set(rates)):
            rates[rows] = forward_rate(rows, model.config.hidden_size, model.config.intermediate_size)
        padded = floor_seconds(model, shape, rates)
        real = floor_seconds(model, shape, rates, padded=False)
        gflops = sum(batch_flops(model, *batch) for batch in shape) / padded / 1e9
        floors[name] = (padded, real, gflops)
        tokens = sum(r for _, _, r in shape)
        print(
            f"{name}: {len(texts)} sentences in {len(shape)} batches of up to {batch_size}, {tokens} real tokens "
            f"(padding {1 - tokens / sum(n * length for n, length, _ in shape):.1%}); fp32 rate by batch rows "
            + ", ".join(f"{rows} {rates[rows]:.0f}" for rows in sorted({bucket(n * length) for n, length, _ in shape}))
            + f" GFLOP/s: floor {padded:.2f} s ({real:.2f} s without padding)"
        )
    for job in jobs.values():
        job[0]()  # warm-up: first calls, allocator
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for round_ in range(1, args.rounds + 1):
        for name, (run, *_rest) in jobs.items():
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            times[name].append(seconds)
            print(
                f"round {round_} {name}: {seconds:.2f} s = {seconds / floors[name][0]:.2f}x its floor "
                f"(load {bc.loadavg():.2f})"
            )
    for name, seconds in times.items():
        median = statistics.median(seconds)
        padded, real, gflops = floors[name]
        print(
            f"{name}: median {median:.2f} s (min {min(seconds):.2f}, max {max(seconds):.2f}); floor {padded:.2f} s "
            f"at {gflops:.0f} GFLOP/s = {median / padded:.2f}x the floor ({median / real:.2f}x the unpadded one)"
        )


if __name__ == "__main__":
    main()
