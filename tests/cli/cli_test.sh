#!/usr/bin/env bash
# The endoked command line as a user runs it: mpirun synth and ingest at 1, 2 and 3 ranks, store
# info/verify, config errors, --strict, and a failing rank that must not hang the world.
set -euo pipefail
BIN=$1
MPIRUN=${2:-mpirun}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mpi() { local n=$1; shift; timeout 120 "$MPIRUN" -np "$n" --oversubscribe --bind-to none "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
sha() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["content_sha256"])' "$1/manifest.json"; }

common_synth=(--set synth.exams=24 --set synth.width=96 --set synth.height=80 --set synth.exams_per_shard=5
              --set synth.min_images=2 --set synth.max_images=4 --set synth.threads=1)
mpi 2 "$BIN" synth "${common_synth[@]}" --set synth.output="$T/raw" --set synth.truth="$T/truth" --set run.dir="$T/run-synth"
[ -f "$T/raw/reports.csv" ] || fail "synth wrote no reports.csv"
[ -f "$T/run-synth/config.yaml" ] && [ -f "$T/run-synth/run.json" ] && [ -f "$T/run-synth/metrics.jsonl" ] || fail "run dir incomplete"
grep -q 'exams: 24' "$T/run-synth/config.yaml" || fail "resolved config lacks the --set value"
"$BIN" store verify --deep "$T/truth" | grep -q '^OK' || fail "truth store does not verify"

cat >"$T/ingest.yaml" <<YAML
ingest:
  images_dir: $T/raw/images
  reports: $T/raw/reports.csv
  shard_size_mb: 0.02
  threads: 1
YAML
for n in 1 2 3; do
  if [ "$n" = 1 ]; then runner=(); else runner=(mpi "$n"); fi
  "${runner[@]}" "$BIN" ingest --config "$T/ingest.yaml" --set ingest.output="$T/s$n" --set run.dir="$T/run-ingest$n"
done
[ "$(sha "$T/s1")" = "$(sha "$T/s2")" ] || fail "1 and 2 ranks differ"
[ "$(sha "$T/s1")" = "$(sha "$T/s3")" ] || fail "1 and 3 ranks differ"
"$BIN" store verify --deep "$T/s3" | grep -q '^OK' || fail "verify --deep"
"$BIN" store info "$T/s2" | grep -q 'exams          24' || fail "store info"

# A damaged shard: verify exits 1 and names the shard.
cp -r "$T/s2" "$T/damaged"
shard=$(ls "$T/damaged"/shard-*.h5 | head -1)
truncate -s 1000 "$shard"
if "$BIN" store verify "$T/damaged" >"$T/v.txt"; then fail "verify passed a truncated shard"; fi
grep -q "$(basename "$shard"): size" "$T/v.txt" || fail "verify did not name the shard"

# Config errors name file:line:col, or the --set.
if "$BIN" ingest --config "$T/ingest.yaml" --set ingest.shrd_size=1 2>"$T/err.txt"; then fail "unknown key accepted"; fi
grep -q "unknown key 'ingest.shrd_size' at --set ingest.shrd_size=1" "$T/err.txt" || { cat "$T/err.txt"; fail "bad message"; }
printf 'ingest:\n  threads: two\n' >"$T/bad.yaml"
if "$BIN" ingest --config "$T/bad.yaml" 2>"$T/err.txt"; then fail "bad value accepted"; fi
grep -q "bad.yaml:2:12" "$T/err.txt" || { cat "$T/err.txt"; fail "no file:line:col"; }

# --strict: rejects make the exit code non-zero; without it they are only counted.
cp -r "$T/raw" "$T/raw2"
: >"$T/raw2/images/EX0000003/999.jpg"
"$BIN" ingest --config "$T/ingest.yaml" --set ingest.images_dir="$T/raw2/images" --set ingest.output="$T/s-lenient" --set run.dir="$T/r" 2>/dev/null
set +e
"$BIN" ingest --config "$T/ingest.yaml" --set ingest.images_dir="$T/raw2/images" --set ingest.output="$T/s-strict" --strict --set run.dir="$T/r" 2>/dev/null
code=$?
set -e
[ "$code" = 3 ] || fail "--strict exit code $code"
[ ! -e "$T/s-strict" ] || fail "a strict run with rejects wrote its store"
grep -q 'zero-byte file' "$T/r/rejects.jsonl" || fail "reject not recorded in the run directory"
# ... and a strict overwrite that fails keeps the store it would have replaced.
lenient=$(sha "$T/s-lenient")
set +e
"$BIN" ingest --config "$T/ingest.yaml" --set ingest.images_dir="$T/raw2/images" --set ingest.output="$T/s-lenient" \
  --set ingest.overwrite=true --strict --set run.dir="$T/r" 2>/dev/null
code=$?
set -e
[ "$code" = 3 ] && [ "$(sha "$T/s-lenient")" = "$lenient" ] || fail "a failed strict overwrite changed the store ($code)"

# Nothing is lost: an overwrite run that finds nothing valid keeps the previous store; an
# output equal to an input, or a folder endoked did not make, is refused before any work.
before=$(sha "$T/s1")
mkdir -p "$T/bad/images/EX1" && : >"$T/bad/images/EX1/1.jpg"
printf 'exam_id,centre,language,report\nEX1,c,en,text\n' >"$T/bad/reports.csv"
set +e
"$BIN" ingest --config "$T/ingest.yaml" --set ingest.images_dir="$T/bad/images" --set ingest.reports="$T/bad/reports.csv" \
  --set ingest.output="$T/s1" --set ingest.overwrite=true --set run.dir="$T/r-bad" >"$T/bad.txt" 2>&1
code=$?
set -e
[ "$code" = 1 ] || { cat "$T/bad.txt"; fail "nothing valid gave exit code $code"; }
[ "$(sha "$T/s1")" = "$before" ] || fail "an overwrite that found nothing valid replaced the store"
"$BIN" store verify "$T/s1" | grep -q '^OK' || fail "the kept store does not verify"
if "$BIN" label --set label.store="$T/s1" --set label.output="$T/s1" --set label.overwrite=true --set run.dir="$T/r" 2>"$T/err.txt"; then
  fail "label.output == label.store accepted"
fi
grep -q "overlap" "$T/err.txt" || { cat "$T/err.txt"; fail "overlap message"; }
[ "$(sha "$T/s1")" = "$before" ] || fail "label over its own input changed it"
if "$BIN" ingest --config "$T/ingest.yaml" --set ingest.output="$T/raw/images" --set ingest.overwrite=true --set run.dir="$T/r" 2>"$T/err.txt"; then
  fail "ingest into its own images_dir accepted"
fi
[ -f "$T/raw/reports.csv" ] && [ -d "$T/raw/images/EX0000003" ] || fail "the ingest source was touched"

# Labelling on 1, 2 and 3 ranks gives the same labels store; eval against the synthetic truth;
# export to CSV and JSONL.
for n in 1 2 3; do
  if [ "$n" = 1 ]; then runner=(); else runner=(mpi "$n"); fi
  "${runner[@]}" "$BIN" label --set label.store="$T/s$n" --set label.output="$T/labels$n" --set run.dir="$T/run-label$n" >"$T/label$n.txt" 2>&1
done
[ "$(sha "$T/labels1")" = "$(sha "$T/labels2")" ] || fail "labels on 1 and 2 ranks differ"
[ "$(sha "$T/labels1")" = "$(sha "$T/labels3")" ] || fail "labels on 1 and 3 ranks differ"
grep -q "label: 24 reports" "$T/label3.txt" || { cat "$T/label3.txt"; fail "label summary"; }
"$BIN" label eval --labels "$T/labels2" --truth "$T/truth" --set run.dir="$T/run-eval" >"$T/eval.txt" 2>&1
/usr/bin/python3 - "$T/run-eval/eval.json" <<'PY' || fail "label eval"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["exams"] == 24, e["exams"]
assert e["fields"]["polyp_present"]["accuracy"] >= 0.95, e["fields"]["polyp_present"]
PY
"$BIN" label export "$T/labels2" --csv "$T/labels.csv" --jsonl "$T/labels.jsonl"
[ "$(wc -l <"$T/labels.csv")" = 25 ] && [ "$(wc -l <"$T/labels.jsonl")" = 24 ] || fail "export row counts"
head -1 "$T/labels.csv" | grep -q '^exam_id,polyp_present,confidence' || fail "export header"
if "$BIN" label --set label.store="$T/s1" --set label.output="$T/labels1" --set run.dir="$T/r" 2>"$T/err.txt"; then
  fail "label overwrote an existing store"
fi

# endoked run: the recipe lists stages by name; a store that fails verification stops the run
# before the label stage reads it (and an unknown stage name is refused before any work).
cat >"$T/pipe.yaml" <<YAML
pipeline:
  stages: [verify, label]
verify:
  store: $T/damaged
  deep: false
label:
  store: $T/damaged
  output: $T/labels-damaged
YAML
set +e
mpi 2 "$BIN" run --config "$T/pipe.yaml" --set run.dir="$T/run-pipe" >"$T/pipe.txt" 2>&1
code=$?
set -e
[ "$code" = 1 ] || { cat "$T/pipe.txt"; fail "a failed verification gave exit code $code"; }
[ ! -e "$T/labels-damaged" ] && [ ! -e "$T/labels-damaged.partial" ] || fail "label ran on a store that failed verification"
grep -q "stage verify ended with exit code 1" "$T/pipe.txt" || { cat "$T/pipe.txt"; fail "no stop message"; }
if "$BIN" run --config "$T/pipe.yaml" --set 'pipeline.stages=[verify, lable]' --set run.dir="$T/r" 2>"$T/err.txt"; then
  fail "an unknown stage was accepted"
fi
grep -q "unknown stage 'lable'" "$T/err.txt" || { cat "$T/err.txt"; fail "unknown stage message"; }
# The key metrics table: printed after the stage lines and kept as pipeline.md.
cat >"$T/pipe-eval.yaml" <<YAML
pipeline:
  stages: [label_eval]
label_eval:
  labels: $T/labels2
  truth: $T/truth
YAML
"$BIN" run --config "$T/pipe-eval.yaml" --set run.dir="$T/run-pipe-eval" >"$T/pipe-eval.txt" 2>&1 || { cat "$T/pipe-eval.txt"; fail "label_eval pipeline"; }
grep -Eq '^  label eval  label F1 \(polyp present\) +[01]\.[0-9]{3}$' "$T/pipe-eval.txt" || { cat "$T/pipe-eval.txt"; fail "no key metrics table"; }
grep -Eq '^\| label eval \| label F1 \(polyp present\) \| [01]\.[0-9]{3} \|$' "$T/run-pipe-eval/pipeline.md" || fail "no pipeline.md"

# Preemption: a signal during synth, ingest or label makes every rank finish its shard and exit
# 75 with nothing at the output; the same command again continues from the finished shards and
# gives the same store as an uninterrupted run.
preempt_then_resume() {  # name, signal (USR1|TERM), sha of the uninterrupted store, output dir, command...
  local name=$1 signal=$2 want=$3 out=$4; shift 4
  set +e
  mpi 2 env ENDOKED_TEST_SIGNAL_AFTER_SHARDS=1 ENDOKED_TEST_SIGNAL="$signal" "$@" --set run.dir="$T/r-$name" >"$T/pre-$name.txt" 2>&1
  local code=$?
  set -e
  [ "$code" = 75 ] || { cat "$T/pre-$name.txt"; fail "$name: preemption exited $code, expected 75"; }
  [ ! -e "$out" ] && [ -d "$out.partial" ] || fail "$name: a preempted run left no partial output (or a final one)"
  mpi 2 "$@" --set run.dir="$T/r-$name" >"$T/res-$name.txt" 2>&1 || { cat "$T/res-$name.txt"; fail "$name: the rerun failed"; }
  grep -q "reused from the interrupted run" "$T/res-$name.txt" || { cat "$T/res-$name.txt"; fail "$name: the rerun redid every shard"; }
  [ "$(sha "$out")" = "$want" ] || fail "$name: the resumed store differs from an uninterrupted run"
}
mpi 2 "$BIN" synth "${common_synth[@]}" --set synth.format=store --set synth.output="$T/st1" --set synth.truth="$T/st1-truth" --set run.dir="$T/r"
preempt_then_resume synth USR1 "$(sha "$T/st1")" "$T/st2" "$BIN" synth "${common_synth[@]}" --set synth.format=store \
  --set synth.output="$T/st2" --set synth.truth="$T/st2-truth"
preempt_then_resume ingest TERM "$(sha "$T/s1")" "$T/s-pre" "$BIN" ingest --config "$T/ingest.yaml" --set ingest.output="$T/s-pre"
preempt_then_resume label TERM "$(sha "$T/labels1")" "$T/labels-pre" "$BIN" label --set label.store="$T/s1" --set label.output="$T/labels-pre"

# Exit codes follow the README's table: usage errors are 2 and name what was wrong.
set +e
"$BIN" ingets >"$T/err.txt" 2>&1; code=$?
set -e
[ "$code" = 2 ] || fail "an unknown subcommand exited $code"
grep -q "ingets" "$T/err.txt" || { cat "$T/err.txt"; fail "the unknown subcommand is not named"; }
set +e
"$BIN" store info "$T/raw/reports.csv" >"$T/err.txt" 2>&1; code=$?
set -e
[ "$code" = 2 ] && grep -q "is a file, not a store directory" "$T/err.txt" || { cat "$T/err.txt"; fail "store info FILE"; }
if "$BIN" run --set run.dir="$T/r" >"$T/err.txt" 2>&1; then fail "run without a config did something"; fi
grep -q "pipeline.stages is empty" "$T/err.txt" || { cat "$T/err.txt"; fail "run without a config message"; }

# A rank that fails aborts the world instead of hanging it.
start=$(date +%s)
if mpi 2 "$BIN" ingest --set ingest.images_dir="$T/nowhere" --set ingest.reports="$T/none.csv" --set ingest.output="$T/x" --set run.dir="$T/r" 2>"$T/err.txt"; then
  fail "ingest of nothing succeeded"
fi
[ $(( $(date +%s) - start )) -lt 60 ] || fail "failing world took too long"
grep -q "is not a directory" "$T/err.txt" || { cat "$T/err.txt"; fail "error not reported"; }
echo "cli: all checks passed"
