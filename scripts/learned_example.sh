#!/usr/bin/env bash
# docs/learned.md's "What has the model learned?", on a real run:
#   scripts/learned_example.sh RUN [RUNS_DIR] [OTHER_RUN]  > benchmarks/results/learned_example.txt
# RUN: a finished training (the default 8-epoch run of the embedded model for the README; a run trained before
# maps were recorded shows the map's one-line error and the rest goes on); RUNS_DIR: its runs folder (default
# ./runs); OTHER_RUN: a second run for the per-phenomenon diff. WORKBENCH: the command (default `workbench`).
set -uo pipefail
run="$1"; runs="${2:-runs}"; other="${3:-}"
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="$(cd "$runs" && pwd)"  # then run from the repository root: the suite is data/pairs/example.tsv
cd "$here"
read -r -a workbench <<< "${WORKBENCH:-workbench}"
wb() { echo "\$ workbench $*"; "${workbench[@]}" "$@" 2>&1; echo; }
wb eval "$run" --runs "$runs" --phenomena --split both
wb data map "$run" --runs "$runs" --limit 5
wb data map "$run" --runs "$runs" --region hard --limit 12
wb data map "$run" --runs "$runs" --region ambiguous --limit 5
csv="$(mktemp --suffix=.csv)"
wb data map "$run" --runs "$runs" --csv "$csv"
head -3 "$csv" | cut -c1-160; echo
rm -f "$csv"
wb pairs "$run" data/pairs/example.tsv --runs "$runs" --limit 6
if [ -n "$other" ]; then wb diff "$run" "$other" --runs "$runs" --phenomena --split both; fi
