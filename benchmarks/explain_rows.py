"""How many rows (sentences x integration steps) one forward/backward of `explain_many` should take:
the same sentences explained at several batch sizes, alternated, in one process.

    python benchmarks/explain_rows.py [--sentences 16] [--rows 16,32,64,128,256] [--rounds 2] [--out FILE]

The sentences are the first --sentences of in_domain_dev (the ones benchmarks/batching.py explains); the
model is the embedded all-MiniLM-L6-v2 with a fresh head (the time does not depend on the weights). Each
round times explain_many once per row count (the default adaptive steps), the order reversed every round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=16)
    parser.add_argument("--rows", default="16,32,64,128,256")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from workbench.core.data.cola import load_cola
    from workbench.core.explore.explain import explain_many
    from workbench.core.model.predict import Predictor

    predictor = Predictor.load("embedded:all-MiniLM-L6-v2", device="cpu")
    sentences = load_cola()["in_domain_dev"]["sentence"].astype(str).tolist()[: args.sentences]
    rows = [int(r) for r in args.rows.split(",")]
    explain_many(predictor.model, predictor.tokenizer, sentences[:2])  # warm-up
    lines = [bc.machine(), f"{len(sentences)} sentences, explain_many with the default adaptive steps"]
    print("\n".join(lines), flush=True)
    seconds: dict[int, list[float]] = {r: [] for r in rows}
    for round_number in range(args.rounds):
        for count in rows if round_number % 2 == 0 else rows[::-1]:
            start = time.perf_counter()
            explain_many(predictor.model, predictor.tokenizer, sentences, rows_per_pass=count)
            seconds[count].append(time.perf_counter() - start)
            line = f"round {round_number + 1} rows {count:4d}: {seconds[count][-1]:.2f} s, load {bc.loadavg():.1f}"
            lines.append(line)
            print(line, flush=True)
    for count in rows:
        median = statistics.median(seconds[count])
        lines.append(f"rows {count:4d}: median {median:.2f} s for {len(sentences)} sentences")
    print("\n".join(lines[-len(rows) :]))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
