"""Faithfulness of the attributions, as ERASER measures it (DeYoung et al. 2020, "ERASER: A Benchmark to
Evaluate Rationalized NLP Models", section 4): delete tokens and see the predicted label's probability move.

    python benchmarks/faithfulness.py --run /tmp/attr-runs/e2 [--limit 0] [--baselines mask,pad]

For every holdout sentence (out_of_domain_dev.tsv, 516) the run's model predicts a label y with p(y | x).
The attributions (core explain_many, default steps) rank the word tokens by how much they push toward y
(attribution toward acceptable, sign flipped when y is unacceptable). For k in 10, 20, 50 % of the word
tokens (at least one; [CLS] and [SEP] always kept):

  comprehensiveness = p(y | x) - p(y | x without its top-k tokens)   higher: the tokens mattered
  sufficiency       = p(y | x) - p(y | only its top-k tokens)        lower: they suffice alone

"Without" deletes the tokens from the sequence (ERASER's deletion, not a replacement by [MASK]). The same
figures for k tokens drawn at random (the mean of --random-draws draws a sentence, seeded) are the
reference an attribution method has to beat. Means over sentences; AOPC = the mean over the three k.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
KS = (0.10, 0.20, 0.50)


def probabilities(model, ids_list: list[list[int]], pad: int, batch: int = 128) -> list[list[float]]:
    """Softmax of the model's logits for each token-id list (padded per batch, masked)."""
    import torch

    out: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, len(ids_list), batch):
            chunk = ids_list[start : start + batch]
            width = max(len(ids) for ids in chunk)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in chunk])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in chunk])
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            out.extend(torch.softmax(logits, dim=-1).tolist())
    return out


def top_positions(order: list[int], fraction: float) -> set[int]:
    return set(order[: max(1, math.ceil(fraction * len(order)))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run folder")
    parser.add_argument("--limit", type=int, default=0, help="holdout sentences (0: all 516)")
    parser.add_argument(
        "--baselines", default="mask,pad", help="attribution baselines to score (the first is the default)"
    )
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="write the table here too (a .txt; raw figures beside it as .json)")
    args = parser.parse_args()

    import torch

    from workbench.core.base.config import LABELS
    from workbench.core.data.cola import load_cola
    from workbench.core.explore.explain import explain_many
    from workbench.core.model.predict import Predictor

    run = Path(args.run)
    predictor = Predictor.load(run / "model", device="cpu")
    model, tokenizer = predictor.model, predictor.tokenizer
    sentences = load_cola()["holdout"]["sentence"].astype(str).tolist()
    if args.limit:
        sentences = sentences[: args.limit]
    pad = tokenizer.pad_token_id
    kept = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    rng = random.Random(args.seed)
    acceptable = LABELS.index("acceptable")
    header = (
        f"# faithfulness (ERASER): run {run.name}, {len(sentences)} holdout sentences, "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f} at start"
    )
    print(header, flush=True)
    rows: dict[str, dict[str, float]] = {}
    random_done = False
    for baseline in [b for b in args.baselines.split(",") if b]:
        start = time.perf_counter()
        explained = [
            e for e in explain_many(model, tokenizer, sentences, baseline=baseline) if not isinstance(e, Exception)
        ]
        seconds = time.perf_counter() - start
        ids_of = [tokenizer.convert_tokens_to_ids(e.tokens) for e in explained]
        predicted = [LABELS.index(e.label) for e in explained]
        full = [e.probabilities[e.label] for e in explained]
        methods = {f"IG from {baseline}": None}
        if not random_done:
            methods["random"] = None
        for method in methods:
            variants: list[list[int]] = []  # per (sentence, k, draw): comprehensiveness then sufficiency inputs
            owners: list[tuple[int, float]] = []
            for number, (e, ids) in enumerate(zip(explained, ids_of, strict=True)):
                words = [i for i, t in enumerate(ids) if t not in kept]
                sign = 1.0 if predicted[number] == acceptable else -1.0
                draws = args.random_draws if method == "random" else 1
                for fraction in KS:
                    for _ in range(draws):
                        if method == "random":
                            order = rng.sample(words, len(words))
                        else:
                            order = sorted(words, key=lambda i: -sign * e.attributions[i])
                        top = top_positions(order, fraction)
                        variants.append([t for i, t in enumerate(ids) if i not in top])
                        variants.append([t for i, t in enumerate(ids) if i in top or t in kept])
                        owners.append((number, fraction))
            probs = probabilities(model, variants, pad)
            comprehensiveness = {k: [] for k in KS}
            sufficiency = {k: [] for k in KS}
            sums: dict[tuple[int, float], list[tuple[float, float]]] = {}
            for j, (number, fraction) in enumerate(owners):
                y = predicted[number]
                sums.setdefault((number, fraction), []).append(
                    (full[number] - probs[2 * j][y], full[number] - probs[2 * j + 1][y])
                )
            for (_, fraction), values in sums.items():
                comprehensiveness[fraction].append(statistics.mean(v[0] for v in values))
                sufficiency[fraction].append(statistics.mean(v[1] for v in values))
            row = {f"comp@{int(k * 100)}": statistics.mean(comprehensiveness[k]) for k in KS}
            row.update({f"suff@{int(k * 100)}": statistics.mean(sufficiency[k]) for k in KS})
            row["comp_aopc"] = statistics.mean(row[f"comp@{int(k * 100)}"] for k in KS)
            row["suff_aopc"] = statistics.mean(row[f"suff@{int(k * 100)}"] for k in KS)
            if method != "random":
                row["seconds_per_sentence"] = seconds / len(explained)
                row["mean_steps"] = statistics.mean(e.n_steps for e in explained)
                row["share_median"] = statistics.median(
                    e.explained_share for e in explained if e.explained_share is not None
                )
                row["not_converged"] = sum(not e.converged for e in explained) / len(explained)
            rows[method] = row
            print(method, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
        random_done = True
    lines = [
        header,
        "",
        "| method | comp. 10% | 20% | 50% | AOPC ↑ | suff. 10% | 20% | 50% | AOPC ↓ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, row in rows.items():
        lines.append(
            f"| {method} | "
            + " | ".join(f"{row[f'comp@{int(k * 100)}']:.3f}" for k in KS)
            + f" | **{row['comp_aopc']:.3f}** | "
            + " | ".join(f"{row[f'suff@{int(k * 100)}']:.3f}" for k in KS)
            + f" | **{row['suff_aopc']:.3f}** |"
        )
    lines.append("")
    for method, row in rows.items():
        if "seconds_per_sentence" in row:
            lines.append(
                f"# {method}: share of the change explained, median {row['share_median']:.2f}; convergence "
                f"error large for {row['not_converged']:.1%}; mean steps {row['mean_steps']:.1f}; "
                f"{row['seconds_per_sentence']:.3f} s per sentence (shared cores)"
            )
    lines.append(f"# load {os.getloadavg()[0]:.1f} at the end")
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out.with_suffix(".json").write_text(
            json.dumps({"run": str(run), "sentences": len(sentences), "rows": rows}, indent=1) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
