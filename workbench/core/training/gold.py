"""The map's raw material during training: each batch's p(gold label), taken from the training forward pass
and kept on the device until an epoch's end or a checkpoint moves it into the run's TrainingDynamics."""

from __future__ import annotations

from typing import Any

from workbench.core.runs.dynamics import TrainingDynamics


class GoldRecorder:
    """p(gold) of every trained sentence, by epoch: noted per batch without a wait for the device, recorded
    into DYNAMICS (the main process's map; None elsewhere) by `flush`."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, Any, Any]] = []  # (epoch, rows, p_gold) still on the device
        self.dynamics: TrainingDynamics | None = None

    def note(self, epoch: int, logits: Any, labels: Any, rows: Any) -> None:
        """Keep the batch's p(gold label) for the map, on the device (no wait for it): taken from this
        training forward pass, dropout on, before the batch's own update, as the cartography authors'
        code does; a separate pass at the epoch's end would cost a third of an epoch."""
        if rows is None:
            return
        import torch

        with torch.no_grad():
            p_gold = torch.softmax(logits.detach().float(), dim=-1).gather(1, labels.view(-1, 1)).view(-1)
        self.pending.append((epoch, rows.detach(), p_gold))

    def flush(self, accelerator: Any) -> None:
        """Move the pending p(gold) values into the map (one read from the device; with several
        processes, gathered from all of them: a collective)."""
        import torch

        pending, self.pending = self.pending, []
        parts: dict[int, tuple[list[Any], list[Any]]] = {}
        for epoch, rows, p_gold in pending:
            parts.setdefault(epoch, ([], []))[0].append(rows)
            parts[epoch][1].append(p_gold)
        records = [
            (epoch, torch.cat(rows).cpu().numpy(), torch.cat(p).cpu().numpy()) for epoch, (rows, p) in parts.items()
        ]
        if accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            records = gather_object(records)
        if self.dynamics is not None:
            for epoch, rows, p_gold in records:
                self.dynamics.record(epoch, rows, p_gold)
