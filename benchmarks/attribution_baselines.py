"""Integration baselines for the attributions, measured on real holdout sentences with a trained run.

    python benchmarks/attribution_baselines.py --run /tmp/attr-runs/e2 [--limit 100] [--steps 16,64]

For each baseline of core/explore/explain.py (BASELINES: [PAD], [MASK], [UNK] tokens in place of every
word, zero word embeddings, the mean word embedding; [CLS] and [SEP] kept) and each step count, over the
first --limit sentences of the holdout (out_of_domain_dev.tsv):

  p(base)     the baseline input's p(acceptable), median (min-max) over sentences (it depends on length)
  |change|    |log-odds(sentence) - log-odds(baseline)|, median: what the attributions must add up to
  share       sum(attributions) / change, median and the 10th percentile: how much of the change the
              attributions explain (1.00 = all of it)
  |delta|/|change|  the convergence error against the change, median and 90th percentile
  large       share of sentences whose convergence error is large (explain.converged(): > 5% of the
              change + 0.02)
  s/sentence  wall-clock seconds per sentence (batched as explain_many batches; cores shared: ratios only)

The log-odds come from the model's own forward passes (not Captum's); the prior is the share of
acceptable sentences in the run's training part.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run folder")
    parser.add_argument("--limit", type=int, default=100, help="holdout sentences (0: all 516)")
    parser.add_argument(
        "--steps", default="16,64", help="fixed step counts to compare, and 'auto' (the default schedule)"
    )
    parser.add_argument("--baselines", default="", help="comma-separated (default: all)")
    parser.add_argument(
        "--out", default="", help="write the table here too (a .txt; the raw figures beside it as .json)"
    )
    args = parser.parse_args()

    import math

    import torch

    from workbench.core.data.cola import load_cola
    from workbench.core.explore.explain import BASELINES, explain_many
    from workbench.core.model.predict import Predictor
    from workbench.core.runs.lookup import load_run_data

    run = Path(args.run)
    predictor = Predictor.load(run / "model", device="cpu")
    model, tokenizer = predictor.model, predictor.tokenizer
    holdout = load_cola()["holdout"]
    sentences = holdout["sentence"].astype(str).tolist()
    if args.limit:
        sentences = sentences[: args.limit]
    train = load_run_data(run)["train"]
    prior = float(train["label"].mean())
    baselines = [b for b in args.baselines.split(",") if b] or list(BASELINES)
    steps = [None if s == "auto" else int(s) for s in args.steps.split(",")]
    lines = [
        f"# attribution baselines: run {run.name}, {len(sentences)} holdout sentences, "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f} at start",
        f"# prior p(acceptable) in the run's training part {prior:.3f} (log-odds {math.log(prior / (1 - prior)):+.2f})",
        "baseline  steps  p(base) median (min-max)  |change| med  share med  share p10  "
        "|d|/|chg| med  p90  large  s/sent",
    ]
    raw = []
    for baseline in baselines:
        for n_steps in steps:
            start = time.perf_counter()
            results = explain_many(model, tokenizer, sentences, n_steps=n_steps, baseline=baseline)
            seconds = (time.perf_counter() - start) / len(sentences)
            ok = [r for r in results if not isinstance(r, Exception)]
            p_base = [1 / (1 + math.exp(-r.baseline_log_odds)) for r in ok]
            change = [abs(r.change) for r in ok]
            shares = [r.explained_share for r in ok if r.explained_share is not None]
            relative = [abs(r.delta) / max(abs(r.change), 1e-6) for r in ok]
            large = sum(not r.converged for r in ok) / len(ok)
            used = statistics.mean(r.n_steps for r in ok)
            name = "auto" if n_steps is None else str(n_steps)
            row = {
                "baseline": baseline,
                "steps": name,
                "mean_steps_used": used,
                "p_baseline_median": statistics.median(p_base),
                "p_baseline_min": min(p_base),
                "p_baseline_max": max(p_base),
                "abs_change_median": statistics.median(change),
                "share_median": statistics.median(shares),
                "share_p10": quantile(shares, 0.1),
                "relative_delta_median": statistics.median(relative),
                "relative_delta_p90": quantile(relative, 0.9),
                "large_share": large,
                "seconds_per_sentence": seconds,
                "load": os.getloadavg()[0],
            }
            raw.append(row)
            line = (
                f"{baseline:<8}  {name:>5}  {row['p_baseline_median']:.3f} ({min(p_base):.3f}-{max(p_base):.3f})"
                f"      {row['abs_change_median']:6.2f}      {row['share_median']:6.2f}     {row['share_p10']:6.2f}"
                f"     {row['relative_delta_median']:6.3f}  {row['relative_delta_p90']:6.3f}  {large:5.0%}"
                f"  {seconds:.3f}" + (f"  (mean steps {used:.0f})" if n_steps is None else "")
            )
            print(line, flush=True)
            lines.append(line)
    lines.append(
        f"# load {os.getloadavg()[0]:.1f} at the end (2 cores shared with other sessions: seconds are "
        "for ratios within this run only)"
    )
    print(lines[-1])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out.with_suffix(".json").write_text(
            json.dumps({"run": str(run), "sentences": len(sentences), "prior": prior, "rows": raw}, indent=1) + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
