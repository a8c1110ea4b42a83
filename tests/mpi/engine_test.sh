#!/usr/bin/env bash
# engine::Trainer as a user runs it: the same global batch on 1 and 2 ranks gives the same
# weights (1e-5); stopping and resuming is bitwise; a run preempted on 2 ranks resumes on 1 (and
# one on 3 on 1) through the Loader with the same global sample order; a NaN loss stops every
# rank naming the step; accumulation of 2 × 4 equals batches of 8.
set -euo pipefail
BIN=$1
MPIRUN=${2:-mpirun}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
run() { local np=$1; shift; timeout 120 "$MPIRUN" -np "$np" --oversubscribe --bind-to none "$BIN" train "$T/store" "$T/labels" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" make "$T/store" "$T/labels"

# 1 rank × 8 == 2 ranks × 4 (same global batch of 8): equal within 1e-5, same ids per step.
run 1 "$T/c1" "$T/one.bin" batch=8
run 2 "$T/c2" "$T/two.bin" batch=4
"$BIN" compare "$T/one.bin" "$T/two.bin" 1e-5 || fail "1 rank and 2 ranks differ"
cmp -s "$T/one.bin.ids" "$T/two.bin.ids" || fail "1 rank and 2 ranks read different samples"
[ "$(wc -l < "$T/two.bin.ids")" = 9 ] || fail "expected 9 steps, got $(wc -l < "$T/two.bin.ids")"
grep -q '"eval_epoch":2' "$T/c2-run/metrics.jsonl" || fail "no evaluation line in metrics.jsonl"
grep -q '"accuracy"' "$T/c2-run/metrics.jsonl" || fail "no step metrics in metrics.jsonl"

# Stop after 4 steps, resume: bitwise identical to the straight run at the same world size.
run 2 "$T/c3" "$T/part.bin" batch=4 max_steps=4
[ "$(cat "$T/c3/latest")" = "step-000000000004" ] || fail "no checkpoint at step 4"
run 2 "$T/c3" "$T/part.bin" batch=4
cmp "$T/two.bin" "$T/part.bin" || fail "stop + resume is not bitwise identical"
cmp -s "$T/two.bin.ids" "$T/part.bin.ids" || fail "stop + resume read other samples"

# Preempted on 2 ranks in step 5 (mid-epoch), resumed on 1 rank with the same global batch.
set +e
run 2 "$T/c4" "$T/cross.bin" batch=4 preempt_at=4
code=$?
set -e
[ "$code" = 75 ] || fail "preemption exited $code, expected 75"
[ "$(cat "$T/c4/latest")" = "step-000000000005" ] || fail "preemption did not checkpoint step 5"
run 1 "$T/c4" "$T/cross.bin" batch=8
cmp -s "$T/two.bin.ids" "$T/cross.bin.ids" || fail "the 1-rank resume did not continue the sample order"
"$BIN" compare "$T/two.bin" "$T/cross.bin" 1e-5 || fail "2 ranks -> 1 rank resume differs"

# Batches of 8 on 3 ranks is another global batch (24): the order of samples still continues.
run 3 "$T/c5" "$T/three.bin" batch=8
run 3 "$T/c6" "$T/three_cross.bin" batch=8 max_steps=1
run 1 "$T/c6" "$T/three_cross.bin" batch=24
cmp -s "$T/three.bin.ids" "$T/three_cross.bin.ids" || fail "3 ranks -> 1 rank: sample order differs"
"$BIN" compare "$T/three.bin" "$T/three_cross.bin" 1e-5 || fail "3 ranks -> 1 rank resume differs"

# Gradient accumulation: 2 micro-batches of 4 on 1 rank == batches of 8.
run 1 "$T/c7" "$T/acc.bin" batch=4 accumulate=2
"$BIN" compare "$T/one.bin" "$T/acc.bin" 1e-5 || fail "accumulation 2 × 4 differs from 8"

# A NaN loss on one rank stops every rank, naming the step; no hang.
set +e
out=$(run 2 "$T/c8" "$T/nan.bin" batch=4 nan_at=2 2>&1)
code=$?
set -e
[ "$code" != 0 ] || fail "a NaN loss did not stop the run"
echo "$out" | grep -q "non-finite loss at step 2" || { echo "$out"; fail "the NaN error does not name step 2"; }
echo "engine: 1 rank == 2 ranks, resume bitwise, preempt 2 -> 1 and 3 -> 1 keep the sample order, accumulation, NaN stop"
