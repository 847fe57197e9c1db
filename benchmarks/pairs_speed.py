"""How long `workbench pairs` takes to score a suite of 5,000 minimal pairs (the issue's bar: < 30 s on
the 2-core machine), and how batch size changes it.

    python benchmarks/pairs_speed.py [--pairs 5000] [--batch-sizes 64,256] [--out results/pairs_speed.txt]

The suite is made from data/pairs/example.tsv: each pair repeated with a different proper name or number
appended, so the 5,000 pairs hold ~10,000 distinct sentences (the scorer scores each distinct sentence
once; a suite of copies would flatter it). The model is the embedded all-MiniLM-L6-v2 with its
classification head as a fresh run has it: the time does not depend on the weights. Timed: load_suite +
score_suite (reading, tokenizing, the forward passes), the model already loaded; each batch size twice,
alternated, with the load average beside it."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

import workbench  # noqa: E402,F401


def make_suite(folder: Path, n: int) -> Path:
    source = (HERE.parent / "data" / "pairs" / "example.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = source[0], source[1:]
    names = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo"]
    out = [header]
    for i in range(n):
        paradigm, field, good, bad = rows[i % len(rows)].split("\t")
        tag = f" said {names[i % len(names)]} {i // len(rows)}."
        out.append("\t".join([paradigm, field, good[:-1] + "," + tag, bad[:-1] + "," + tag]))
    path = folder / "suite.tsv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import torch

    from workbench.core.explore.pairs import load_suite, score_suite
    from workbench.core.model.loading import load_model, load_tokenizer

    lines = [bc.machine(), f"torch threads {torch.get_num_threads()}"]
    model = load_model("embedded:all-MiniLM-L6-v2")
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_suite(Path(tmp), args.pairs)
        suite = load_suite(path)
        distinct = len(set(suite.pairs["good"]) | set(suite.pairs["bad"]))
        lines.append(f"{len(suite)} pairs, {distinct} distinct sentences")
        for round_ in range(args.rounds):
            for size in [int(s) for s in args.batch_sizes.split(",")]:
                load = bc.loadavg()
                start, cpu = time.perf_counter(), time.process_time()
                report = score_suite(model, tokenizer, load_suite(path), batch_size=size)
                wall, used = time.perf_counter() - start, time.process_time() - cpu
                lines.append(
                    f"round {round_ + 1} batch {size:>4}: {wall:6.1f} s wall, {used:6.1f} s CPU, "
                    f"{distinct / wall:6.0f} sentences/s, accuracy {report.accuracy:.3f}, "
                    f"load {load:.1f} -> {bc.loadavg():.1f}"
                )
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
