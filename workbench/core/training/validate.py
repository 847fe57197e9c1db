"""An epoch's validation: the model's MCC, accuracy and loss on the validation loader, gathered from every
process (each sentence once), dropout off for the pass and back on after."""

from __future__ import annotations

from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.training.step import out_of_memory_as


def validate(model: Any, loader: Any, accelerator: Any, config: TrainConfig) -> dict[str, float]:
    """compute_metrics of MODEL's predictions on LOADER, with the mean cross-entropy as "loss"; out of memory
    is said as the smaller --eval-batch-size to try."""
    import torch

    from workbench.core.evaluation.evaluate import compute_metrics

    model.eval()
    all_logits, all_labels = [], []
    size = config.eval_batch_size
    out_of_memory = (
        f"out of memory validating at eval batch size {size} (max length "
        f"{config.max_length}); try --eval-batch-size {max(1, size // 2)}"
    )
    with torch.no_grad():
        for batch in loader:
            with out_of_memory_as(out_of_memory):
                logits = model(**batch).logits.float()
            logits, labels = accelerator.gather_for_metrics((logits, batch["labels"]))
            all_logits.append(logits.cpu())
            all_labels.append(labels.cpu())
    model.train()
    logits = torch.cat(all_logits)
    labels = torch.cat(all_labels)
    metrics = compute_metrics(labels.tolist(), logits.argmax(-1).tolist())
    metrics["loss"] = float(torch.nn.functional.cross_entropy(logits, labels))
    return metrics
