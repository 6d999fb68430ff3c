#!/usr/bin/env bash
# The GPU check: one prepared run that verifies and measures mixkit on a fresh GPU machine in about
# 8 minutes, and writes everything it measures into one folder (and, with --bundle, one archive).
#
#   benchmarks/gpu_check.sh [--device cuda|cpu] [--tiny] [--out DIR] [--bundle FILE.tar.gz]
#                           [--data-dir DIR] [--wheels DIR] [--python PY] [--stages a,b,...] [--budget S]
#
# Stages (each under its own time limit; a failing stage is recorded and the next one runs; --budget S, by
# default 480 s for the real check and none for the dry run, caps the whole run: a stage gets at most what
# is left, and a stage with under 15 s left is recorded as skipped; the --bundle archive is refreshed after
# every stage, so a run stopped from outside still leaves what it had measured):
#   setup      mixkit from this checkout (pip install -e, else PYTHONPATH=src), optional peer wheels, env.txt
#   tests      the GPU-marked tests (pytest -m gpu: CPU-vs-CUDA equality of every mixer, autocast, the bench
#              on the device) and tests/test_gpu.py whole; junit XML + the -rA listing
#   speed      benchmarks/speed.py on the device, 32 and 224 px, against torchvision v2, timm and kornia
#   data       benchmarks/data_pipeline.py: DataLoader workers vs the resident split, alone and with a
#              PreAct-ResNet-18 step
#   compile    benchmarks/compile_cost.py: torch.compile off / model / mixer / all
#   cost       benchmarks/model_aware_cost.py and benchmarks/learned_cost.py: the model-aware and learned
#              methods' step cost
#   protocol   benchmarks/protocol_time.py: PreAct-ResNet-18 on the full Fashion-MNIST, extrapolated to the
#              200-epoch, 3-seed comparison, with packed runs (1, 2, 4, 8 processes)
#   bench      one real `mixkit bench` epoch of that protocol, three runs packed with --jobs 3
#
# --device cpu --tiny is the dry run: every stage with tiny sizes on the CPU (the GPU-marked tests are then
# reported as skipped, as they are). summary.md lists each stage's status, time and output files.
# --stages runs only the named stages (setup always runs): a rerun of what failed, into the same --out.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEVICE=cuda TINY=0 OUT="$ROOT/build/gpu_check" BUNDLE="" DATA_DIR="" WHEELS="" PY="${PYTHON:-}" STAGES="" BUDGET=""
ALL_STAGES="tests-gpu tests-gpu-file speed data data-step compile cost-model-aware cost-learned protocol bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --stages) STAGES="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check.sh: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;; esac
for s in ${STAGES//,/ }; do
  case " $ALL_STAGES " in *" $s "*) ;; *) echo "gpu_check.sh: --stages: unknown stage '$s' (stages: $ALL_STAGES)" >&2; exit 2 ;; esac
done
case "$BUDGET" in
  "") BUDGET=$([ $TINY = 1 ] && echo 0 || echo 480) ;;
  *[!0-9]*) echo "gpu_check.sh: --budget must be a whole number of seconds (0: none), got '$BUDGET'" >&2; exit 2 ;;
esac
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
mkdir -p "$OUT" || { echo "gpu_check.sh: cannot create --out '$OUT'" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/log.txt" SUMMARY="$OUT/summary.md"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T_START=$(date +%s) BAD=0  # BAD: a stage of this run failed, timed out or was skipped
WHEN="$(date -u +%Y-%m-%dT%H:%M:%SZ) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
if [ -n "$STAGES" ] && [ -f "$SUMMARY" ]; then
  # a rerun of some stages into the same folder: its rows and log are added to the earlier ones
  printf '\n## Rerun of %s\n\nstarted %s.\n\n| stage | status | seconds | files |\n|---|---|---:|---|\n' \
    "$STAGES" "$WHEN" >> "$SUMMARY"
  echo "=== rerun of $STAGES, $WHEN" >> "$LOG"
else
  : > "$LOG"
  {
    echo "# GPU check"
    echo
    echo "\`benchmarks/gpu_check.sh --device $DEVICE$([ $TINY = 1 ] && echo ' --tiny')\` started $WHEN."
    echo
    echo "| stage | status | seconds | files |"
    echo "|---|---|---:|---|"
  } > "$SUMMARY"
fi

# the archive of the folder, refreshed after every stage
bundle() {
  [ -n "$BUNDLE" ] || return 0
  tar -czf "$BUNDLE.tmp" -C "$(dirname "$OUT")" "$(basename "$OUT")" && mv -f "$BUNDLE.tmp" "$BUNDLE"
}

# stage NAME LIMIT_S FILES -- COMMAND...: run COMMAND under a time limit, log it, add a summary row
stage() {
  local name="$1" limit="$2" files="$3"; shift 4
  if [ -n "$STAGES" ] && [[ ",$STAGES," != *",$name,"* ]]; then return 0; fi
  local t0=$(date +%s) rc status left
  if [ "$BUDGET" -gt 0 ]; then
    left=$(( BUDGET - (t0 - T_START) - 5 ))  # 5 s kept for the summary and the archive
    if [ $left -lt 15 ]; then
      echo "| $name | **skipped** (the ${BUDGET}s budget is spent) | 0 | |" >> "$SUMMARY"
      echo "=== [$name] skipped: the budget is spent" | tee -a "$LOG"
      BAD=1
      return 0
    fi
    [ $left -lt "$limit" ] && limit=$left
  fi
  echo "=== [$name] $* (limit ${limit}s)" | tee -a "$LOG"
  timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status="**timed out** (${limit}s)" ;;
    *) status="**failed** (exit $rc)" ;;
  esac
  [ $rc = 0 ] || BAD=1
  echo "| $name | $status | $(( $(date +%s) - t0 )) | $files |" >> "$SUMMARY"
  echo "=== [$name] $status" | tee -a "$LOG"
  bundle
  return 0
}

# sizes: the real check, or the dry run's tiny ones
if [ $TINY = 1 ]; then
  SPEED=(--quick --sections 32,224 --no-thp-rerun)
  DATA=(--dataset digits --batch 32 --batches 3 --rounds 1 --workers 0,1)
  DATA_STEP=(--step resnet8)
  COMPILE=(--model resnet8 --size 8 --batch 8 --methods vanilla,mixup --compile model --rounds 1 --steps 1 --warmup 1)
  COST=(--quick)
  LEARNED=(--models resnet8 --batches 8 --size 8 --rounds 1 --steps 1 --no-memory)
  PROTO=(--dataset digits --model resnet8 --batch 32 --steps 2 --warmup 1 --max-eval 32 --pack 1,2 --pack-steps 3)
  BENCH=(--dataset digits --model resnet8 --n-train 128 --n-test 64 --batch-size 32 --max-eval 32)
  LIMIT=300
else
  SPEED=(--sections 32,224 --rounds 7 --no-thp-rerun)
  DATA=(--dataset fashion-mnist --batch 128 --batches 40 --rounds 5 --workers 0,4,8)
  DATA_STEP=(--step preactresnet18)
  COMPILE=(--model preactresnet18 --size 32 --batch 128 --methods vanilla,mixup,cutmix,fmix --compile model,mixer
           --rounds 5 --steps 10)
  COST=(--model preactresnet18 --rounds 5)
  LEARNED=(--models preactresnet18 --batches 128 --rounds 3 --steps 3)
  PROTO=(--dataset fashion-mnist --steps 30 --pack 1,2,4,8 --pack-steps 60)
  BENCH=(--dataset fashion-mnist --preset fmix-cifar --max-eval 2000)
  LIMIT=150
fi
DATA_ARGS=()
[ -n "$DATA_DIR" ] && DATA_ARGS=(--data-dir "$DATA_DIR")
DEV=(--device "$DEVICE")

# ---- setup: mixkit from this checkout; peers that are missing may come as wheels
t0=$(date +%s) status=ok
echo "=== [setup]" | tee -a "$LOG"
if [ -n "$WHEELS" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/mixkit-site \
    "$WHEELS"/*.whl >> "$LOG" 2>&1 || status="**failed** (the wheels did not install)"
  export PYTHONPATH="/tmp/mixkit-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import importlib.metadata as m; m.version('mixkit')" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . >> "$LOG" 2>&1
fi
if ! "$PY" -c "import importlib.metadata as m; m.version('mixkit')" 2>/dev/null; then
  export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # no entry points then: the bench stage fails
  status="**failed** (pip install -e . failed; PYTHONPATH=src used)"
fi
"$PY" - > "$OUT/env.txt" 2>&1 <<'EOF'
import importlib, platform, subprocess, sys
import torch
print(f"python {platform.python_version()} ({sys.executable}); torch {torch.__version__}; cuda {torch.version.cuda}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device: {torch.cuda.get_device_name(0)}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
          f"{torch.cuda.device_count()} visible")
else:
    print("device: no CUDA device (a CPU run)")
for name in ("mixkit", "torchvision", "timm", "kornia", "lightning", "pytest", "xdist", "sklearn", "mnist1d", "maxflow"):
    try:
        mod = importlib.import_module(name)
        print(f"{name} {getattr(mod, '__version__', '?')} from {mod.__file__}")
    except Exception as e:
        print(f"{name}: not importable ({type(e).__name__}: {e})")
try:
    print(subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout)
except Exception as e:
    print(f"nvidia-smi: {e}")
EOF
cat "$OUT/env.txt" >> "$LOG"
[ "$status" = ok ] || BAD=1
echo "| setup | $status | $(( $(date +%s) - t0 )) | env.txt |" >> "$SUMMARY"
echo "=== [setup] $status" | tee -a "$LOG"
bundle

# ---- tests: the GPU-marked tests, then tests/test_gpu.py whole (its CPU references too)
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 4)
stage tests-gpu $(( LIMIT + 60 )) "tests-gpu.xml, tests-gpu.txt" -- bash -c \
  "'$PY' -m pytest -m gpu -p no:cacheprovider -rA ${XDIST[*]} --junitxml='$OUT/tests-gpu.xml' tests > '$OUT/tests-gpu.txt' 2>&1; rc=\$?; tail -3 '$OUT/tests-gpu.txt'; [ \$rc = 5 ] && exit 0; exit \$rc"
stage tests-gpu-file "$LIMIT" "tests-gpu-file.txt" -- bash -c \
  "'$PY' -m pytest -p no:cacheprovider -rA tests/test_gpu.py > '$OUT/tests-gpu-file.txt' 2>&1; rc=\$?; tail -3 '$OUT/tests-gpu-file.txt'; exit \$rc"

# ---- measurements
stage speed "$LIMIT" speed.md -- "$PY" benchmarks/speed.py "${DEV[@]}" "${SPEED[@]}" --out "$OUT/speed.md"
stage data "$LIMIT" data_pipeline.md -- "$PY" benchmarks/data_pipeline.py "${DEV[@]}" "${DATA[@]}" "${DATA_ARGS[@]}" \
  --out "$OUT/data_pipeline.md" --section "data pipeline"
stage data-step "$LIMIT" data_pipeline.md -- "$PY" benchmarks/data_pipeline.py "${DEV[@]}" "${DATA[@]}" "${DATA_ARGS[@]}" \
  "${DATA_STEP[@]}" --out "$OUT/data_pipeline.md" --section "data pipeline with a training step"
stage compile "$(( LIMIT + 60 ))" compile.md -- "$PY" benchmarks/compile_cost.py "${DEV[@]}" "${COMPILE[@]}" \
  --out "$OUT/compile.md"
stage cost-model-aware "$LIMIT" cost.md -- "$PY" benchmarks/model_aware_cost.py "${DEV[@]}" "${COST[@]}" --out "$OUT/cost.md"
stage cost-learned "$LIMIT" cost.md -- "$PY" benchmarks/learned_cost.py "${DEV[@]}" "${LEARNED[@]}" --out "$OUT/cost.md"
stage protocol "$LIMIT" "protocol_time.md, protocol_time.json" -- "$PY" benchmarks/protocol_time.py "${DEV[@]}" \
  "${PROTO[@]}" "${DATA_ARGS[@]}" --out "$OUT/protocol_time.md"
stage bench "$LIMIT" "bench/" -- "$PY" -m mixkit.cli bench "${DEV[@]}" "${BENCH[@]}" "${DATA_ARGS[@]}" --epochs 1 \
  --methods vanilla,mixup,cutmix --seeds 1 --jobs 3 --quiet --overwrite --out "$OUT/bench"

echo >> "$SUMMARY"
echo "Total: $(( $(date +%s) - T_START )) s$([ "$BUDGET" -gt 0 ] && echo " (budget ${BUDGET} s)"). The log of every stage is log.txt." >> "$SUMMARY"
bundle && [ -n "$BUNDLE" ] && echo "bundle: $BUNDLE"
cat "$SUMMARY"
exit $BAD
