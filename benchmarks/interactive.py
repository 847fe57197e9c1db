"""Interactive figures: TUI first paint, predict latency, attributions, peak resident memory while training.

  python benchmarks/interactive.py                  # all five (the training is one epoch, ~1 min)
  python benchmarks/interactive.py --train-limit 512 --only paint,predict
  python benchmarks/interactive.py --only explain,concurrent

paint    `workbench` started in a pseudo-terminal (80x24): seconds from spawning the process
         to the end of the first frame it writes (the pane tabs are on screen), median of --runs
predict  Predictor on the embedded model, one sentence per call on CPU: p50 / p99 latency over
         --calls calls after 20 warm-up calls
explain  core.explain.explain (Layer Integrated Gradients, default steps) on the embedded model, one
         sentence per call on CPU: p50 / p99 latency over --calls calls after 5 warm-up calls
concurrent  predict p50 / p99 (as `predict`) while another thread computes attributions without
         pause, as the Predict pane does while you type
memory   `workbench train --epochs 1` in a child process: its peak resident set (ru_maxrss)
startup  `workbench --runs EMPTY` in a pseudo-terminal (80x24): seconds from spawning to the first
         frame, to the data table's first sentence on screen, to the status line's "ready"; then
         ctrl+q and the seconds until the process has exited; median (min-max) of --runs
(a training started in the app against `workbench train`: benchmarks/app_training.py)
switch   `workbench` in a pseudo-terminal (80x24) with a training of the embedded model running in it
         (2, then s): milliseconds from a pane's alt+digit key to that pane's footer on screen,
         cycling 1-5, --switches times after the training's first step; p50 / p95 / max
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

SENTENCES = [
    "The book was written by John.",
    "Book the John by written.",
    "Who do you think that left?",
    "The more you read, the more you know.",
    "John seems that is happy.",
]


@contextlib.contextmanager
def workbench_in_pty(args: list[str], size: tuple[int, int] = (24, 80)) -> Iterator[tuple[int, int]]:
    """`workbench ARGS` in a pseudo-terminal of SIZE (rows, columns), as a user starts it: (pid, fd);
    killed and reaped on the way out."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: the workbench TUI
        os.chdir(ROOT)
        os.environ.update(TERM="xterm-256color", COLUMNS=str(size[1]), LINES=str(size[0]))
        os.execv(sys.executable, [sys.executable, "-m", "workbench.cli", *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    try:
        yield pid, fd
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def first_paint(timeout: float = 60.0, size: tuple[int, int] = (24, 80)) -> float:
    """Seconds from spawning `workbench` in a pty to the end of its first frame."""
    start = time.perf_counter()
    seen = b""
    painted = 0.0
    with workbench_in_pty([], size) as (_pid, fd):
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                seen += chunk
                # The first frame is drawn when the tab labels and the footer are on screen.
                if b"Data" in seen and b"Predict" in seen and b"Runs" in seen:
                    painted = time.perf_counter() - start
                    # Wait for the rest of this frame's write (it ends with a quiet pty).
                    while select.select([fd], [], [], 0.02)[0]:
                        try:
                            os.read(fd, 65536)
                        except OSError:
                            break
                        painted = time.perf_counter() - start
                    break
    if not painted:
        raise SystemExit(f"no first frame within {timeout:.0f} s; output began {seen[:300]!r}")
    return painted


def predict_latency(calls: int, model: str | None) -> tuple[float, float, float]:
    """(load seconds, p50 ms, p99 ms) of Predictor.predict_one on CPU."""
    from workbench.core.model.predict import Predictor

    started = time.perf_counter()
    predictor = Predictor.load(model or bc.model_name(None))
    loaded = time.perf_counter() - started
    for i in range(20):
        predictor.predict_one(SENTENCES[i % len(SENTENCES)])
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        predictor.predict_one(SENTENCES[i % len(SENTENCES)])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return loaded, statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def explain_latency(calls: int, model: str | None) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, integration steps) of explain() for one sentence on CPU."""
    from workbench.core.explore.explain import DEFAULT_STEPS, explain
    from workbench.core.model.loading import load_model, load_tokenizer

    name = model or bc.model_name(None)
    classifier, tokenizer = load_model(name), load_tokenizer(name)
    for i in range(5):
        explain(classifier, tokenizer, SENTENCES[i % len(SENTENCES)])
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        explain(classifier, tokenizer, SENTENCES[i % len(SENTENCES)])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))], DEFAULT_STEPS


def predict_while_explaining(calls: int, model: str | None) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, attributions finished meanwhile) of Predictor.predict_one while another
    thread runs explain() on the same model in a loop."""
    import threading

    from workbench.core.explore.explain import explain
    from workbench.core.model.predict import Predictor

    predictor = Predictor.load(model or bc.model_name(None))
    stop = threading.Event()
    done = [0]

    def attribute() -> None:
        i = 0
        while not stop.is_set():
            explain(predictor.model, predictor.tokenizer, SENTENCES[i % len(SENTENCES)])
            done[0] += 1
            i += 1

    for i in range(20):
        predictor.predict_one(SENTENCES[i % len(SENTENCES)])
    worker = threading.Thread(target=attribute, daemon=True)
    worker.start()
    try:
        time.sleep(0.2)  # the attributions are under way
        times = []
        for i in range(calls):
            t0 = time.perf_counter()
            predictor.predict_one(SENTENCES[i % len(SENTENCES)])
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)  # keystrokes, not a tight loop
    finally:
        stop.set()
        worker.join()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))], done[0]


def training_peak_rss(train_limit: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of `workbench train --epochs 1` in a child process."""
    import resource

    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        cmd = [sys.executable, "-m", "workbench.cli", "train", "--runs", tmp, "--name", "rss", "--epochs", "1"]
        if train_limit:
            cmd += ["--train-limit", str(train_limit)]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(f"training failed: {proc.stderr[-2000:]}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds


ANSI = re.compile(rb"\x1b\[[0-9;?]*[a-zA-Z]")  # escape sequences: what remains is the screen's text


def startup_and_quit(
    runs_dir: str,
    timeout: float = 60.0,
    size: tuple[int, int] = (24, 80),
    keys_at_once: bytes = b"",
    quit_at: float | None = None,
) -> dict[str, float]:
    """Seconds to the first frame, the table's first sentence, "ready"; then from ctrl+q to the exit.
    KEYS_AT_ONCE are typed as soon as the first frame shows, and with QUIT_AT ctrl+q is sent that many
    seconds after launch whatever the screen shows (a quit while worker threads still load a model)."""
    start = time.perf_counter()
    seen = b""
    marks: dict[str, float] = {}
    # the screen's text without its escape sequences; the table's rows are shuffled, so its filter line
    # ("train 7,695/7,695 · ...", drawn with the rows) marks it
    goals = {
        "frame": lambda t: b"Data" in t and b"Predict" in t and b"Runs" in t,
        "table": lambda t: re.search(rb"train [0-9,]+/[0-9,]+", t) is not None,
        "ready": lambda t: re.search(rb"(?<![a-z])ready", t) is not None,
    }
    with workbench_in_pty(["--runs", runs_dir], size) as (pid, fd):
        typed = False
        while (time.perf_counter() - start < (quit_at or timeout)) and (quit_at or len(marks) < len(goals)):
            if select.select([fd], [], [], 0.01)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
                text = ANSI.sub(b"", seen[-65536:])  # the latest frames
                for name, goal in goals.items():
                    if name not in marks and goal(text):
                        marks[name] = time.perf_counter() - start
            if keys_at_once and not typed and "frame" in marks:
                os.write(fd, keys_at_once)
                typed = True
        if quit_at is None:
            time.sleep(0.3)  # a user reads the screen before quitting
        asked = time.perf_counter()
        os.write(fd, b"\x11")  # ctrl+q
        while time.perf_counter() - asked < timeout:
            if select.select([fd], [], [], 0.01)[0]:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                marks["quit"] = time.perf_counter() - asked
                break
    return marks


# Each pane's footer says which pane is on screen (bindings only that pane has)
PANE_MARKS = {"1": b"Split", "2": b"Resume", "3": b"FP/FN", "4": b"history", "5": b"Compare"}


STEP = re.compile(rb"step ([0-9]+)/")  # the Train pane's progress line
READY = re.compile(rb"(?<![a-z])ready")  # the status line once the tokenizer is loaded


def read_until(fd: int, goal: Callable[[bytes], bool], limit: float) -> bytes:
    """What the app writes to FD until GOAL holds for the latest frames (escape codes removed)."""
    seen = b""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if select.select([fd], [], [], 0.002)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
            if goal(ANSI.sub(b"", seen[-65536:])):  # the latest frames (not all, at every read)
                return seen
    raise TimeoutError(ANSI.sub(b"", seen)[-2000:].decode(errors="replace"))


def drain(fd: int) -> None:
    """Read and drop what the app has drawn so far (a terminal reads it; a full pty would block the app)."""
    while select.select([fd], [], [], 0)[0]:
        os.read(fd, 65536)


def last_step(fd: int, limit: float) -> int:
    """The training's step on the next frame that shows the progress line."""
    return int(STEP.findall(ANSI.sub(b"", read_until(fd, lambda t: STEP.search(t) is not None, limit)))[-1])


def pane_switches(
    runs_dir: str, switches: int, size: tuple[int, int] = (24, 80), timeout: float = 120.0, train: bool = True
) -> tuple[list[float], int]:
    """Milliseconds from each pane digit to its pane's footer, while a training runs in the app; and the
    training's last step seen."""
    latencies: list[float] = []
    step = 0
    with workbench_in_pty(["--runs", runs_dir], size) as (_pid, fd):
        read_until(fd, lambda t: READY.search(t) is not None, timeout)
        os.write(fd, b"2")
        read_until(fd, lambda t: b"Resume" in t, timeout)
        if train:
            os.write(fd, b"s")  # start the form's training (the embedded model, 8 epochs)
            last_step(fd, timeout)
        keys = "13452" * (switches // 5 + 1)
        for key in keys[:switches]:
            time.sleep(0.25)  # a user reads the pane before the next key
            drain(fd)  # what the app drew meanwhile
            asked = time.perf_counter()
            os.write(fd, b"\x1b" + key.encode())  # alt+digit: Predict's sentence box takes plain digits
            read_until(fd, lambda t, mark=PANE_MARKS[key]: mark in t, 10.0)
            latencies.append((time.perf_counter() - asked) * 1000)
        if train:
            os.write(fd, b"\x1b2")
            step = last_step(fd, 10.0)
    return latencies, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="paint,predict,explain,concurrent,memory")
    parser.add_argument("--runs", type=int, default=5, help="first-paint repeats")
    parser.add_argument("--calls", type=int, default=300, help="predict calls")
    parser.add_argument("--explain-calls", type=int, default=50, help="attribution calls")
    parser.add_argument("--model", default=None, help="model for predict and explain (a run folder works too)")
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--switches", type=int, default=60, help="pane switches while a training runs")
    args = parser.parse_args()
    only = args.only.split(",")
    print(f"machine: {bc.machine()}; load average {bc.loadavg():.2f}")
    if "paint" in only:
        first_paint()  # a first run fills the OS file cache, as on any machine used twice
        paints = [first_paint() for _ in range(args.runs)]
        print(
            f"TUI first paint: median {statistics.median(paints):.2f} s, "
            f"min {min(paints):.2f} s, max {max(paints):.2f} s ({args.runs} runs; load {bc.loadavg():.2f})"
        )
    if "startup" in only:
        with tempfile.TemporaryDirectory() as runs_dir:
            startup_and_quit(runs_dir)  # fills the OS file cache
            trials = [startup_and_quit(runs_dir) for _ in range(args.runs)]
        for name in ("frame", "table", "ready", "quit"):
            values = [t[name] for t in trials if name in t]
            if values:
                print(
                    f"TUI {name:<5}: median {statistics.median(values):.2f} s, min {min(values):.2f} s, "
                    f"max {max(values):.2f} s ({len(values)} of {args.runs} runs; load {bc.loadavg():.2f})"
                )
            else:
                print(f"TUI {name}: not seen in {args.runs} runs")
    if "busyquit" in only:
        # "4" and a sentence typed at the first frame: Predict loads the model in a worker thread (torch and
        # transformers imported there), and ctrl+q comes 3 s after launch, before that load has ended
        with tempfile.TemporaryDirectory() as runs_dir:
            trials = [
                startup_and_quit(runs_dir, keys_at_once=b"4The dog barked.", quit_at=3.0) for _ in range(args.runs)
            ]
        quits = [t["quit"] for t in trials if "quit" in t]
        print(
            f"TUI quit 3 s after launch, Predict loading its model: median {statistics.median(quits):.2f} s, "
            f"min {min(quits):.2f} s, max {max(quits):.2f} s ({len(quits)} of {args.runs} runs; "
            f"'ready' seen before the quit in {sum('ready' in t for t in trials)}; load {bc.loadavg():.2f})"
        )
    if "switch" in only:
        for training in (False, True):
            with tempfile.TemporaryDirectory() as runs_dir:
                latencies, step = pane_switches(runs_dir, args.switches, train=training)
            ordered = sorted(latencies)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            print(
                f"pane switch {'while training' if training else 'idle'}: p50 {statistics.median(ordered):.0f} ms, "
                f"p95 {p95:.0f} ms, max {ordered[-1]:.0f} ms ({len(ordered)} switches"
                f"{f'; the training at step {step}' if training else ''}; load {bc.loadavg():.2f})"
            )
    if "predict" in only:
        loaded, p50, p99 = predict_latency(args.calls, args.model)
        print(
            f"predict, one sentence on CPU: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"({args.calls} calls; model load {loaded:.1f} s; load {bc.loadavg():.2f})"
        )
    if "explain" in only:
        p50, p99, steps = explain_latency(args.explain_calls, args.model)
        print(
            f"attributions for one sentence on CPU ({steps} IG steps): p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"({args.explain_calls} calls; load {bc.loadavg():.2f})"
        )
    if "concurrent" in only:
        p50, p99, done = predict_while_explaining(args.calls, args.model)
        print(
            f"predict while attributions run in another thread: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"({args.calls} calls, {done} attributions meanwhile; load {bc.loadavg():.2f})"
        )
    if "memory" in only:
        rss, seconds = training_peak_rss(args.train_limit)
        print(
            f"training peak RSS: {rss:.0f} MB (workbench train --epochs 1"
            f"{f' --train-limit {args.train_limit}' if args.train_limit else ''}, {seconds:.0f} s; "
            f"load {bc.loadavg():.2f})"
        )


if __name__ == "__main__":
    main()
