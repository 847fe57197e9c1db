"""`workbench train` as torchrun runs it, with eyes on every process (tests only).

    torchrun --nproc_per_node 2 tests/helpers/ddp_driver.py OUT MODE -- train ARGS...

Each process runs the real CLI (`workbench.cli.main`) on the real training; through the
load_model seam of tests/helpers/faults.py it records, per rank, the loss of every training
forward (OUT/rank<R>.json) and, once training returns, the trained parameters
(OUT/rank<R>.pt). MODE:
  plain           nothing else
  nosync          the model is not wrapped in DistributedDataParallel: gradients are never
                  all-reduced (not in the suite: run by hand to see test_ddp's equal-parameters
                  check fail; its ranks end with different parameters)
  fail-exception  rank 1 raises RuntimeError in its 2nd training forward
  fail-nan        rank 1's 2nd training loss is infinite
  fail-oom        rank 1's 2nd training forward hits what the CPU allocator raises on OOM
  fail-backward   rank 1 raises RuntimeError in its 2nd backward pass, where rank 0 waits in the
                  gradient all-reduce: a failure the step's agreement cannot hear
  stop-3          rank 0 writes the run's stop request during its 3rd training forward (as
                  `workbench stop` does): every rank must stop at the same step
A failing rank writes OUT/fault_time (time.time() of the fault)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faults  # noqa: E402

FAIL_RANK = 1
FAIL_FORWARD = 2


def main(argv: list[str]) -> int:
    out, mode = Path(argv[0]), argv[1]
    cli_args = argv[argv.index("--") + 1 :]
    rank = int(os.environ.get("RANK", "0"))
    out.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    trained: list[Any] = []

    def fault(module: Any, output: Any) -> Any:
        (out / "fault_time").write_text(f"{time.time()}\n")
        if mode == "fail-exception":
            raise RuntimeError(f"injected failure on rank {rank}")
        if mode == "fail-nan":
            output.loss = output.loss * math.inf
            return output
        if mode == "fail-backward":

            def fail(grad: Any) -> Any:
                (out / "fault_time").write_text(f"{time.time()}\n")
                raise RuntimeError(f"injected failure on rank {rank} in backward")

            output.loss.register_hook(fail)
            return output
        import torch

        torch.empty(2**60)  # RuntimeError: DefaultCPUAllocator: can't allocate memory
        return output

    def hook(model: Any) -> None:
        trained.append(model)

        def record(module: Any, inputs: Any, output: Any) -> None:
            if module.training and output.loss is not None:
                losses.append(float(output.loss.detach()))

        if mode.startswith("fail-") and rank == FAIL_RANK:
            faults.training_forwards(model, lambda n: n == FAIL_FORWARD, fault)
        if mode == "stop-3" and rank == 0:
            from workbench.core.base.layout import STOP_FILE

            run_dir = Path(cli_args[cli_args.index("--runs") + 1]) / cli_args[cli_args.index("--name") + 1]
            faults.training_forwards(model, lambda n: n == 3, lambda m, o: (run_dir / STOP_FILE).touch())
        model.register_forward_hook(record)

    import workbench.core.model.loading

    workbench.core.model.loading.load_model = faults.on_training_model(hook)  # type: ignore[assignment]
    if mode == "nosync":
        from accelerate import Accelerator

        def bare(self: Any, model: Any, device_placement: Any = None, evaluation_mode: bool = False) -> Any:
            return model.to(self.device)

        Accelerator.prepare_model = bare  # type: ignore[method-assign]

    from workbench.cli import main as cli_main

    try:
        status = cli_main(cli_args)
    finally:
        (out / f"rank{rank}.json").write_text(json.dumps({"losses": losses}))
    if trained:
        import torch

        torch.save({k: v.detach().cpu() for k, v in trained[0].state_dict().items()}, out / f"rank{rank}.pt")
    return status


def rank(*argv: str) -> None:
    """The entrypoint tests/helpers/warm.torchrun gives the elastic agent: a status as the exit status."""
    status = main(list(argv))
    if status:
        sys.exit(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
