#!/usr/bin/env bash
# A small `mixkit bench` run used as a user would: interrupted with Ctrl-C (SIGINT to the process group)
# in serial and in parallel mode, resumed, its results.jsonl damaged, re-run, then re-used with another
# config. Prints the exit code and the results.jsonl row count after each step.
#
#   bash scripts/interrupt_resume_session.sh [OUT_DIR]      (about 5 minutes on 2 cores)
set -u
MIXKIT=${MIXKIT:-mixkit}
OUT=${1:-$(mktemp -d)/session}
ARGS=(--methods vanilla,mixup,cutmix --seeds 3 --epochs 60 --n-train 1000 --n-test 300
      --no-corruptions --no-fgsm --no-occlusion --throughput-steps 2 --quiet)

rows() { if [ -f "$1/results.jsonl" ]; then wc -l < "$1/results.jsonl" | tr -d ' '; else echo 0; fi; }

# run the bench in its own process group and send SIGINT to the whole group after $2 seconds
interrupt_after() {
    local out=$1 secs=$2; shift 2
    setsid "$MIXKIT" bench "${ARGS[@]}" --out "$out" "$@" > "$out.log" 2>&1 &
    local pid=$!
    sleep "$secs"
    kill -INT -- "-$pid"
    wait "$pid"; local rc=$?
    echo "  exit $rc; last line: $(tail -n 1 "$out.log")"
}

step() { echo; echo "\$ $*"; }

mkdir -p "$(dirname "$OUT")"
step "mixkit bench ... --jobs 1 --out $OUT-serial   (Ctrl-C after 15 s)"
interrupt_after "$OUT-serial" 15 --jobs 1
echo "  results.jsonl rows: $(rows "$OUT-serial")"

step "mixkit bench ... --jobs 2 --out $OUT   (Ctrl-C after 20 s)"
interrupt_after "$OUT" 20 --jobs 2
echo "  results.jsonl rows: $(rows "$OUT")"

step "mixkit bench ... --jobs 2 --out $OUT   (resume: the same command)"
"$MIXKIT" bench "${ARGS[@]}" --jobs 2 --out "$OUT"; echo "  exit $?; results.jsonl rows: $(rows "$OUT")"

step "cut the last line of $OUT/results.jsonl in half"
python3 - "$OUT/results.jsonl" <<'EOF'
import sys
p = sys.argv[1]
data = open(p, "rb").read().rstrip(b"\n")
last = data.rfind(b"\n") + 1
open(p, "wb").write(data[:last + (len(data) - last) // 2])
EOF
echo "  results.jsonl complete rows: $(grep -c '}$' "$OUT/results.jsonl")"

step "mixkit bench ... --jobs 2 --out $OUT   (rerun after the damage)"
start=$(date +%s)
"$MIXKIT" bench "${ARGS[@]}" --jobs 2 --out "$OUT"; rc=$?
echo "  exit $rc in $(( $(date +%s) - start )) s; results.jsonl rows: $(rows "$OUT")"

step "mixkit bench ... --jobs 2 --out $OUT   (rerun: nothing left to train)"
start=$(date +%s)
"$MIXKIT" bench "${ARGS[@]}" --jobs 2 --out "$OUT"; rc=$?
echo "  exit $rc in $(( $(date +%s) - start )) s; results.jsonl rows: $(rows "$OUT")"

step "mixkit bench ... --epochs 70 --out $OUT   (another config, same folder)"
"$MIXKIT" bench "${ARGS[@]}" --epochs 70 --jobs 2 --out "$OUT"; echo "  exit $?; results.jsonl rows: $(rows "$OUT")"
