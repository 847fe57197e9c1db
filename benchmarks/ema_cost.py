"""Per-step cost of --ema-decay on the embedded model: the foreach lerp that train.py uses, torch's
AveragedModel with get_ema_multi_avg_fn, and one whole training step, timed interleaved in one
process (so that the load of a shared machine hits all three alike; the ratios are the result).

    python benchmarks/ema_cost.py [--repeats 7] > benchmarks/results/ema_cost.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def main() -> None:
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from workbench.core.base.config import TrainConfig
    from workbench.core.data.cola import load_cola
    from workbench.core.model.loading import load_tokenizer
    from workbench.core.training.optim import WeightAverage, parameter_groups
    from workbench.core.training.prepare import initial_model
    from workbench.core.training.speed import freeze_word_embeddings

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    config = TrainConfig()
    torch.manual_seed(config.seed)
    model = initial_model(config)
    freeze_word_embeddings(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {k: v for k, v in g.items() if k != "names"}
            for g in parameter_groups(model, config.learning_rate, config.weight_decay, config.layer_lr_decay)
        ],
        foreach=True,
    )
    frame = load_cola()["train"].iloc[: config.batch_size]
    batch = load_tokenizer(config.model)(
        frame["sentence"].tolist(), padding=True, truncation=True, max_length=config.max_length, return_tensors="pt"
    )
    labels = torch.tensor(frame["label"].tolist())
    ours = WeightAverage(params, 0.999)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=False)

    def step() -> None:
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timings: dict[str, list[float]] = {
        "training step (batch 32)": [],
        "foreach lerp (train.py)": [],
        "AveragedModel.update_parameters": [],
    }
    jobs = [
        ("training step (batch 32)", step),
        ("foreach lerp (train.py)", lambda: ours.update(params)),
        ("AveragedModel.update_parameters", lambda: theirs.update_parameters(model)),
    ]
    step()  # warm up each once
    for _, job in jobs[1:]:
        job()
    for _ in range(args.repeats):
        for name, job in jobs:
            start = time.perf_counter()
            job()
            timings[name].append(time.perf_counter() - start)
    trainable = sum(p.numel() for p in params)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"on {torch.get_num_threads()} thread(s); 1-min load {os.getloadavg()[0]:.1f} (a SHARED machine)"
    )
    print(
        f"# embedded model, {trainable:,} trainable weights (word-embedding table frozen), {args.repeats} "
        "interleaved repeats, median (min-max) seconds"
    )
    step_median = statistics.median(timings["training step (batch 32)"])
    for name, values in timings.items():
        median = statistics.median(values)
        print(
            f"{name:<34} {median:.4f} ({min(values):.4f}-{max(values):.4f})  "
            f"{100 * median / step_median:.2f}% of a step"
        )


if __name__ == "__main__":
    main()
