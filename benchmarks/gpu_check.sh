#!/usr/bin/env bash
# One short GPU session, all checks in one call (a lent GPU machine gives minutes, not hours).
#
#   OUT=runs/gpu_check bash benchmarks/gpu_check.sh
#
# Runs from the repository root with the machine's own python3 (its torch build) and
# PYTHONPATH=src, no install. KCF/CSRT/MOSSE need opencv-contrib: if ./.whl holds an
# opencv-contrib-python-headless wheel it is unpacked into /tmp/site first (the device
# machine has no registry; see docs/RESULTS.md "GPU").
# Steps, each under its own time limit so that one slow step cannot eat the others:
#   1. versions, GPU, whether KCF is there
#   2. benchmarks/speed.py --device cuda, float32 and float16 autocast (paper-size forward and
#      training throughput)
#   3. `weaktube demo --device cuda`: the main job end to end on the GPU (fp16 autocast +
#      GradScaler, detection, evaluation)
#   4. one B->A seed of the Table 2 ablation on the GPU (source run, baseline_scel,
#      trbl_ncbl, oracle): the target stage with the tracker inside the training step
set -u
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
T_SPEED=${T_SPEED:-75}
T_DEMO=${T_DEMO:-170}
T_ABL=${T_ABL:-240}
STEPS=${STEPS:-"1 2 3 4"}  # e.g. STEPS="1 3" for the environment and the demo only
want() { [[ " $STEPS " == *" $1 "* ]]; }
if ls .whl/opencv_contrib*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/opencv_contrib*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
WT="python3 -m weaktube.cli"
step() { echo "== $(date +%T) $*"; }

want 1 && {
step "1. environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, torch, cv2, numpy; print('python', sys.version.split()[0], 'torch', \
torch.__version__, 'cuda', torch.version.cuda, 'cv2', cv2.__version__, 'KCF', \
hasattr(cv2, 'TrackerKCF_create'), 'numpy', numpy.__version__, 'cpus', __import__('os').cpu_count())"
}

want 2 && {
step "2. speed fp32 / fp16 autocast"
timeout "$T_SPEED" python3 benchmarks/speed.py --device cuda --threads 8 --repeats 10 \
    --train-steps 10 --out "$OUT/speed_cuda_fp32.json" 2>&1 | tail -14
timeout "$T_SPEED" python3 benchmarks/speed.py --device cuda --amp --threads 8 --repeats 10 \
    --train-steps 10 --out "$OUT/speed_cuda_amp.json" 2>&1 | tail -14
}

want 3 && {
step "3. weaktube demo --device cuda"
t0=$(date +%s)
timeout "$T_DEMO" $WT demo --device cuda --out /tmp/gpu_demo --seed 0 > "$OUT/demo.log" 2>&1
echo "demo exit $? after $(( $(date +%s) - t0 )) s"
grep -v "/s\]\|/s, \|clips/s\]\|video/s\]" "$OUT/demo.log" | tail -30
cp /tmp/gpu_demo/results.json "$OUT/demo_results.json" 2>/dev/null
cp /tmp/gpu_demo/train/metrics.jsonl "$OUT/demo_metrics.jsonl" 2>/dev/null
}

want 4 && {
step "4. ablation B->A, seed 3, on the GPU"
t0=$(date +%s)
timeout "$T_ABL" $WT bench ablation --device cuda --seed 3 --direction 'B->A' \
    --only source_only_in_domain baseline_scel trbl_ncbl oracle --out /tmp/gpu_ab \
    > "$OUT/ablation.log" 2>&1
echo "ablation exit $? after $(( $(date +%s) - t0 )) s"
grep -v "/s\]\|/s, \|clips/s\]\|run/s\]" "$OUT/ablation.log" | tail -25
cp /tmp/gpu_ab/ablation.json "$OUT/ablation.json" 2>/dev/null
}
step done
