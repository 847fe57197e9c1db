#!/usr/bin/env bash
# docs/exploring.md's walk-through, on a real run of the embedded model:
#   scripts/explore_example.sh RUNS_DIR RUN [OTHER_RUN]  > benchmarks/results/explore_example.txt
# RUN: a finished default training (workbench train --name RUN); OTHER_RUN: another seed, for the diff.
set -euo pipefail
runs="$1"; run="$2"; other="${3:-}"
wb() { echo "\$ workbench $*"; workbench "$@" 2>&1; echo; }
wb eval "$run" --runs "$runs" --slices
# the most confident false positive of the holdout, from the predictions file eval just wrote
sentence=$(python3 - "$runs/$run/predictions.tsv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8"), delimiter="\t"))
wrong = [r for r in rows if r["label"] == "0" and r["predicted"] == "1"]
print(max(wrong, key=lambda r: float(r["p_acceptable"]))["sentence"])
PY
)
wb explain "$run" "$sentence" --runs "$runs"
wb neighbors "$run" "$sentence" --runs "$runs" --k 5
if [ -n "${VARIANT:-}" ]; then wb explain "$run" "$sentence" --versus "$VARIANT" --runs "$runs"; fi
if [ -n "$other" ]; then wb diff "$run" "$other" --runs "$runs" --limit 5; fi
