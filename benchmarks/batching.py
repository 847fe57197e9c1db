"""Scoring and explaining many sentences: batched against one at a time, in one process, interleaved.

    python benchmarks/batching.py [--model embedded:all-MiniLM-L6-v2 | RUN/model] [--sentences 1000]
                                  [--explain 16] [--rounds 2] [--out benchmarks/results/batching_amd.txt]

  predict  the first --sentences of in_domain_dev + holdout: Predictor.predict_one per sentence (what
           `workbench predict` did) against Predictor.predict_many (what it does now, batches of 64 of
           similar length); the probabilities agree to 1e-5 (checked here too); and predict_many with
           precision bf16 (`workbench predict --precision bf16`), with its largest difference in p(acceptable)
  explain  explain_many (the default adaptive steps) of 1 sentence and of --explain sentences: seconds
           per extra sentence = (t_N - t_1) / (N - 1); and explain() one at a time for the same N
  neighbours  with --run: the first nearest-neighbour query of a run (core run_index + query), without
           the index file (embeds every training sentence) and with it (what training now leaves)
Each round runs every variant once (order alternated); medians over rounds. Timings on shared cores
carry the 1-minute load: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def timed(function):  # noqa: ANN001, ANN201 - a tiny helper
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def first_neighbour_query(run: Path) -> list[str]:
    """Seconds to the first neighbour query of RUN without its index file, then with it."""
    import shutil
    import tempfile

    from workbench.core.explore.neighbors import run_index
    from workbench.core.model.predict import Predictor
    from workbench.core.model.sentence_vectors import INDEX_FILE

    out = []
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / run.name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoint", INDEX_FILE, "*.pid", ".lock"))
        predictor = Predictor.load(copy / "model", device="cpu")
        for state in ("without the index file (built now)", "with the index file"):
            start = time.perf_counter()
            index = run_index(predictor.model, predictor.tokenizer, copy / "model", predictor.max_length)
            index.query(predictor.model, predictor.tokenizer, "The book was written by John.", k=5)
            seconds = time.perf_counter() - start
            out.append(
                f"first neighbour query of {run.name} ({len(index.vectors)} training sentences) {state}: "
                f"{seconds:.2f} s (load {os.getloadavg()[0]:.1f})"
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:all-MiniLM-L6-v2")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--explain", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--run", default="", help="a trained run folder: time its first neighbour query too")
    parser.add_argument("--skip", default="", help="comma-separated: predict,explain")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    import numpy as np
    import torch

    from workbench.core.data.cola import load_cola
    from workbench.core.explore.explain import explain, explain_many
    from workbench.core.model.predict import Predictor

    predictor = Predictor.load(args.model, device="cpu")
    cola = load_cola()
    pool = cola["in_domain_dev"]["sentence"].astype(str).tolist() + cola["holdout"]["sentence"].astype(str).tolist()
    sentences = pool[: args.sentences]
    few = pool[: args.explain]
    lines = [
        f"# batching: model {args.model}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.1f} at start"
    ]
    print(lines[0], flush=True)
    if args.run:
        lines.extend(first_neighbour_query(Path(args.run)))
        print("\n".join(lines[1:]), flush=True)
    skip = set(args.skip.split(","))
    if {"predict", "explain"} <= skip:
        if args.out:
            Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return 0
    predictor.predict(sentences[:8])  # warm-up
    explain(predictor.model, predictor.tokenizer, few[0])
    fast_predictor = Predictor(predictor.model, predictor.tokenizer, precision="bf16")
    fast_predictor.predict(sentences[:8])  # warm-up
    one, many, fast, explain_one, explain_n, explain_loop, loads = [], [], [], [], [], [], []
    gaps: list[float] = []
    for round_number in range(args.rounds):
        order = ["one", "many"] if round_number % 2 == 0 else ["many", "one"]
        for variant in order:
            if variant == "one":
                seconds, alone = timed(lambda: [predictor.predict_one(s) for s in sentences])
                one.append(seconds)
            else:
                seconds, batched = timed(lambda: predictor.predict_many(sentences))
                many.append(seconds)
        np.testing.assert_allclose(
            [p.probabilities["acceptable"] for p in batched], [p.probabilities["acceptable"] for p in alone], atol=1e-5
        )
        seconds, in_bf16 = timed(lambda: fast_predictor.predict_many(sentences))
        fast.append(seconds)
        gaps.append(
            float(
                np.max(
                    np.abs(
                        np.array([p.probabilities["acceptable"] for p in in_bf16])
                        - np.array([p.probabilities["acceptable"] for p in batched])
                    )
                )
            )
        )
        seconds, _ = timed(lambda: explain_many(predictor.model, predictor.tokenizer, few[:1]))
        explain_one.append(seconds)
        seconds, _ = timed(lambda: explain_many(predictor.model, predictor.tokenizer, few))
        explain_n.append(seconds)
        seconds, _ = timed(lambda: [explain(predictor.model, predictor.tokenizer, s) for s in few])
        explain_loop.append(seconds)
        loads.append(os.getloadavg()[0])
        print(
            f"round {round_number + 1}: predict one-at-a-time {one[-1]:.2f} s, batched {many[-1]:.2f} s, "
            f"batched bf16 {fast[-1]:.2f} s; explain 1: "
            f"{explain_one[-1]:.3f} s, {len(few)} batched {explain_n[-1]:.2f} s, {len(few)} one at a time "
            f"{explain_loop[-1]:.2f} s; load {loads[-1]:.1f}",
            flush=True,
        )
    ratios = [a / b for a, b in zip(one, many, strict=True)]
    extra = [(n - o) / (len(few) - 1) for n, o in zip(explain_n, explain_one, strict=True)]
    extra_loop = [(n - o) / (len(few) - 1) for n, o in zip(explain_loop, explain_one, strict=True)]
    lines += [
        f"predict {len(sentences)} sentences: one at a time {statistics.median(one):.2f} s, batched "
        f"{statistics.median(many):.2f} s: {statistics.median(ratios):.1f}x faster (median of per-round ratios, "
        f"{min(ratios):.1f}-{max(ratios):.1f}); probabilities equal within 1e-5",
        f"predict {len(sentences)} sentences batched in bf16 (--precision bf16): {statistics.median(fast):.2f} s, "
        f"{statistics.median(one) / statistics.median(fast):.1f}x one at a time; p(acceptable) within "
        f"{max(gaps):.1e} of fp32's",
        f"explain (default steps): 1 sentence {statistics.median(explain_one):.3f} s; {len(few)} batched "
        f"{statistics.median(explain_n):.2f} s = {statistics.median(extra):.3f} s per extra sentence "
        f"({min(extra):.3f}-{max(extra):.3f}); one at a time {statistics.median(extra_loop):.3f} s per extra sentence",
        f"# load {min(loads):.1f}-{max(loads):.1f} over the rounds (2 cores shared with other sessions)",
    ]
    print("\n".join(lines[1:]))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
