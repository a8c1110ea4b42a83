#!/usr/bin/env bash
# The MIL stage as a user runs it, on a small synthetic corpus (80 exams, seed 11, 4–10 frames
# of 320×256): synth → label (rules) → mil, then
#   - image AUC of the student against the synthetic truth ≥ 0.90 (and exam AUC ≥ 0.95);
#   - 2 ranks × 2 items per step == 1 rank × 4 (the same global batch): scores within 0.02;
#   - preempted (SIGUSR1 as step 40 begins, mid teacher epoch) then rerun: the same scores as
#     the straight run (1e-6), and the run directory shows the resume;
#   - mil score with the trained model.pt on 2 ranks reproduces the stage's own scores (1e-5).
set -euo pipefail
BIN=$1
MPIRUN=$2
CHECK=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mpi() { local n=$1; shift; timeout 600 "$MPIRUN" -np "$n" --oversubscribe --bind-to none "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" synth --set synth.format=store --set synth.exams=80 --set synth.seed=11 \
  --set synth.output="$T/records" --set synth.truth="$T/truth" --set synth.exams_per_shard=20 \
  --set run.dir="$T/run-synth" >/dev/null 2>&1 || fail "synth"
"$BIN" label --set label.store="$T/records" --set label.output="$T/labels" \
  --set run.dir="$T/run-label" >/dev/null 2>&1 || fail "label"

common=(--set mil.store="$T/records" --set mil.labels="$T/labels" --set mil.truth="$T/truth"
        --set mil.model.width=16 --set mil.image_size=128 --set mil.trainer.epochs=12)
"$BIN" mil "${common[@]}" --set mil.items_per_step=4 --set mil.threads=2 \
  --set mil.output="$T/one" --set run.dir="$T/run-one" > "$T/one.log" 2>&1 || { tail -20 "$T/one.log"; fail "1-rank mil"; }
"$CHECK" summary "$T/one" image_auc 0.90 || fail "image AUC below 0.90"
"$CHECK" summary "$T/one" exam_auc 0.95 || fail "exam AUC below 0.95"
[ -f "$T/one/model.pt" ] && [ -f "$T/one/model.json" ] || fail "no model.pt / model.json in the output"
grep -q '"eval_epoch":11' "$T/run-one/metrics.jsonl" || fail "no evaluation line per epoch"

mpi 2 "$BIN" mil "${common[@]}" --set mil.items_per_step=2 --set mil.threads=1 \
  --set mil.output="$T/two" --set run.dir="$T/run-two" > "$T/two.log" 2>&1 || { tail -20 "$T/two.log"; fail "2-rank mil"; }
"$CHECK" compare "$T/one" "$T/two" 0.02 || fail "2 ranks differ from 1 rank"

set +e
ENDOKED_TEST_SIGNAL_AT_STEP=40 "$BIN" mil "${common[@]}" --set mil.items_per_step=4 --set mil.threads=2 \
  --set mil.output="$T/res" --set run.dir="$T/run-res" > "$T/res1.log" 2>&1
code=$?
set -e
[ "$code" = 75 ] || { tail -20 "$T/res1.log"; fail "preempted mil exited $code, expected 75"; }
[ ! -e "$T/res/manifest.json" ] || fail "a preempted run committed its output"
"$BIN" mil "${common[@]}" --set mil.items_per_step=4 --set mil.threads=2 \
  --set mil.output="$T/res" --set run.dir="$T/run-res" > "$T/res2.log" 2>&1 || { tail -20 "$T/res2.log"; fail "resumed mil"; }
grep -q "resum" "$T/res2.log" || { tail -20 "$T/res2.log"; fail "the rerun did not resume"; }
"$CHECK" compare "$T/one" "$T/res" 1e-6 || fail "preempted + resumed differs from the straight run"

mpi 2 "$BIN" mil score --store "$T/records" --checkpoint "$T/one/model.pt" --truth "$T/truth" \
  --labels "$T/labels" --output "$T/scored" --set run.dir="$T/run-score" > "$T/score.log" 2>&1 || { tail -20 "$T/score.log"; fail "mil score"; }
"$CHECK" compare "$T/one" "$T/scored" 1e-5 || fail "mil score differs from the stage's scores"
"$CHECK" summary "$T/scored" image_auc 0.90 || fail "mil score: image AUC"
echo "mil: AUC, 1 rank == 2 ranks, preempt + resume, mil score on 2 ranks"
