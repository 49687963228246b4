#!/bin/bash
# Training throughput of the demo recipe under three OpenMP wait settings (passive, a short
# spin, OpenMP's default spin), idle and beside one busy process, 2 and 1 torch threads.
#   bash benchmarks/omp_wait.sh [DATA]   (DATA: a demo preset folder, default runs/demo/data)
# Prints one JSON line per case (benchmarks/train_procs.py); docs/RESULTS.md §2.
set -e
cd "$(dirname "$0")/.."
D=${1:-runs/demo/data}
run() { # label, clips, env...
  local label=$1 clips=$2; shift 2
  echo "== $label"
  env -u OMP_WAIT_POLICY "$@" .venv/bin/python benchmarks/train_procs.py --data $D --clips $clips --case 1x2x8 --case 1x1x8 2>&1 | grep '^{"procs"'
}
for mode in idle loaded; do
  if [ $mode = loaded ]; then python3 -c "while True: pass" & BUSY=$!; clips=128; else clips=512; fi
  run "$mode passive" $clips OMP_WAIT_POLICY=PASSIVE
  run "$mode spin10k" $clips GOMP_SPINCOUNT=10000
  run "$mode default" $clips
  if [ $mode = loaded ]; then kill $BUSY; fi
done
