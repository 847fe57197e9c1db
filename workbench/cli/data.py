"""`workbench data fetch|show|tokenize` and `workbench model show`: the data and the model before training."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli import learned
from workbench.cli.common import allow_pickle_flag, whole_number
from workbench.core.base.config import COLA_URL
from workbench.core.data.cola import SPLIT_NAMES, describe, fetch, load_cola, token_lengths
from workbench.core.model.loading import load_model, load_word_pieces, summarize, tokenize


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add `data` (fetch, show, tokenize) and `model` (show) to SUBPARSERS."""
    data = subparsers.add_parser("data", help="fetch, show and tokenize data").add_subparsers(
        dest="data_command", required=True
    )
    learned.add_data_commands(data, common)  # data map
    fetch_cmd = data.add_parser("fetch", help="get the CoLA release (official URL, a zip or a folder)")
    fetch_cmd.add_argument("--from", dest="source", default=COLA_URL, help=f"URL, zip or folder (default {COLA_URL})")
    fetch_cmd.add_argument("--to", default=None, help="destination folder (default: the bundled data/cola)")
    fetch_cmd.set_defaults(func=cmd_data_fetch)
    show = data.add_parser("show", parents=[common], help="rows, labels, sources, token lengths, samples")
    show.add_argument("--split", choices=SPLIT_NAMES, default="train")
    show.add_argument("--samples", type=whole_number(0), default=5, help="sentences to show (default 5)")
    show.set_defaults(func=cmd_data_show)
    tok = data.add_parser("tokenize", parents=[common], help="WordPiece tokens and ids of a sentence")
    tok.add_argument("sentence")
    tok.add_argument("--max-length", type=whole_number(3, 8192), default=128)
    tok.set_defaults(func=cmd_data_tokenize)

    model = subparsers.add_parser("model", help="model information").add_subparsers(dest="model_command", required=True)
    model_show = model.add_parser("show", parents=[common], help="print the model's configuration")
    allow_pickle_flag(model_show)
    model_show.set_defaults(func=cmd_model_show)


def cmd_data_fetch(args: argparse.Namespace) -> int:
    counts = fetch(args.source, args.to)
    for name, rows in counts.items():
        print(f"{name}: {rows} sentences")
    print(f"CoLA ready in {args.to or 'data/cola'}")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    cola = load_cola(args.data)
    frame = cola[args.split]
    tokenizer = load_word_pieces(args.model)  # no torch, no transformers: a second instead of five
    stats = describe(frame, token_lengths(tokenizer, frame["sentence"].tolist()))
    print(f"{args.split} ({cola.folder}): {stats['rows']} sentences")
    print(f"  acceptable   {stats['acceptable']:>6}  ({stats['acceptable_share']:.1%})")
    print(f"  unacceptable {stats['unacceptable']:>6}  ({1 - stats['acceptable_share']:.1%})")
    lengths = stats["token_lengths"]
    print(
        f"  tokens: mean {lengths['mean']:.1f}, p50 {lengths['p50']}, p90 {lengths['p90']}, "
        f"p99 {lengths['p99']}, max {lengths['max']}"
    )
    print("  sources: " + ", ".join(f"{k} {v}" for k, v in stats["sources"].items()))
    print("samples:")
    for row in frame.sample(n=min(args.samples, len(frame)), random_state=0).itertuples():
        print(f"  {row.label}  {row.source:<6} {row.sentence}")
    return 0


def cmd_data_tokenize(args: argparse.Namespace) -> int:
    tokenizer = load_word_pieces(args.model)
    pairs = tokenize(tokenizer, args.sentence, max_length=args.max_length)
    print(" ".join(token for token, _ in pairs))
    print(" ".join(str(token_id) for _, token_id in pairs))
    return 0


def cmd_model_show(args: argparse.Namespace) -> int:
    summary = summarize(load_model(args.model, allow_pickle=args.allow_pickle), args.model)
    width = max(len(k) for k, _ in summary.rows())
    for key, value in summary.rows():
        print(f"{key:<{width}}  {value}")
    return 0
