#!/usr/bin/env bash
# Bitwise resume at 2 ranks: 10 steps straight == 5 steps, checkpoint, a new process, 5 more.
# The restart is given another peak learning rate: the checkpoint's LR schedule must win.
set -euo pipefail
BIN=$1
MPIRUN=${2:-mpirun}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
run() { timeout 120 "$MPIRUN" -np 2 --oversubscribe --bind-to none "$BIN" "$@"; }
run 10 0 "$T/none" "$T/straight.bin"
run 10 5 "$T/ckpt" "$T/unused.bin"
[ "$(cat "$T/ckpt/latest")" = "step-000000000005" ] || { echo "FAIL: latest pointer"; exit 1; }
[ -f "$T/ckpt/step-000000000005/rng-rank1.pt" ] && [ -f "$T/ckpt/step-000000000005/optimizer.pt" ] \
  && [ -f "$T/ckpt/step-000000000005/scheduler.json" ] || { echo "FAIL: checkpoint content"; exit 1; }
grep -q '"last_step": 4' "$T/ckpt/step-000000000005/scheduler.json" || { echo "FAIL: scheduler step"; exit 1; }
run 10 0 "$T/ckpt" "$T/resumed.bin" 0.5
cmp "$T/straight.bin" "$T/resumed.bin" || { echo "FAIL: resumed parameters differ from the straight run"; exit 1; }
# and resuming changes nothing if the checkpoint is wrong: a run from scratch differs
run 7 0 "$T/none2" "$T/seven.bin"
if cmp -s "$T/straight.bin" "$T/seven.bin"; then echo "FAIL: 7 and 10 steps agree (the test cannot fail)"; exit 1; fi
# and the learning rate matters: 10 straight steps with the other peak differ
run 10 0 "$T/none3" "$T/other_lr.bin" 0.5
if cmp -s "$T/straight.bin" "$T/other_lr.bin"; then echo "FAIL: the peak lr changes nothing"; exit 1; fi
echo "checkpoint: 10 straight == 5 + restart + 5, bitwise ($(stat -c %s "$T/straight.bin") bytes)"
