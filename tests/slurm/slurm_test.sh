#!/usr/bin/env bash
# endoked under a real Slurm, as a user runs it: a one-node cluster started for this test
# (tests/slurm/cluster.sh), the batch template scripts/slurm/endoked.sbatch for synth → ingest →
# label → mil at 1 node × 2 tasks, each output byte-identical to a 1-rank run without Slurm (mil:
# to a straight 2-task job); a USR1 to the batch shell mid-ingest (what --signal=B:USR1@… does
# before the time limit) and a USR1 to the job step mid-label and mid-training (`scancel
# --signal=USR1`): the job requeues, the next attempt resumes (mil: from the checkpoint the
# signal made), the output is the same, and both attempts are in the one log; srun without
# --mpi=pmix is refused with the fix named. Every daemon started is stopped, pass or fail.
#   slurm_test.sh ENDOKED_BINARY SOURCE_DIR
set -euo pipefail
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
T=$(mktemp -d /tmp/eks.XXXXXX)  # short: Slurm's sockets live below it (107-byte limit)
# ENDOKED_SLURM_TEST_KEEP=1 keeps the directory (job logs, the cluster's logs) for a look.
cleanup() {
  "$SRC/tests/slurm/cluster.sh" stop "$T/c" >/dev/null 2>&1 || true
  if [ "${ENDOKED_SLURM_TEST_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in slurmctld slurmd sbatch munged; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh installs Slurm and munge)"
done
"$SRC/tests/slurm/cluster.sh" start "$T/c" >"$T/cluster.txt" 2>&1 || { cat "$T/cluster.txt"; fail "the cluster did not start"; }
# shellcheck disable=SC1091
. "$T/c/env.sh"
export ENDOKED=$BIN OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$T/w" && cd "$T/w"
SBATCH=$SRC/scripts/slurm/endoked.sbatch

# The shards' checksums and the content hash: equal for equal bytes (the manifest itself also
# records the command line and run directory, which differ).
digest() { /usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/manifest.json")); print(m["content_sha256"], *[s["sha256"] for s in m["shards"]])' "$1"; }
job_field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# Waits (bounded) until job $1 has ended; prints its final state.
wait_job() {
  local state
  for _ in $(seq 1 240); do
    state=$(job_field "$1" JobState)
    case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) echo "$state"; return ;; esac
    sleep 0.5
  done
  echo "TIMEOUT-WAITING($state)"
}
# Waits (bounded) until the stage writing $1 has finished a shard; fails showing log $2 if none.
wait_first_shard() {
  for _ in $(seq 1 120); do
    compgen -G "$1.partial/.finished/*" >/dev/null && return
    sleep 0.25
  done
  cat "$2"; fail "no shard of $1 was finished"
}
submit() {  # name, then the template's arguments; prints the job id
  local name=$1; shift
  sbatch --parsable --job-name="$name" --nodes=1 --ntasks=2 --cpus-per-task=1 --output="$T/w/$name.log" "$SBATCH" "$@"
}
config=$T/w/base.yaml
cat >"$config" <<EOF
synth: {exams: 24, width: 96, height: 80, exams_per_shard: 3, min_images: 2, max_images: 4}
ingest: {images_dir: $T/w/raw/images, reports: $T/w/raw/reports.csv, shard_size_mb: 0.02}
label: {store: $T/w/records}
mil: {store: $T/w/records, labels: $T/w/labels, batch_norm_images: 64, model: {width: 8}, trainer: {epochs: 4}}
EOF

# References: one process, no Slurm.
"$BIN" synth --config "$config" --set synth.output="$T/ref/raw" --set synth.truth="$T/ref/truth" --set run.dir="$T/ref/r1" >/dev/null 2>&1
"$BIN" ingest --config "$config" --set ingest.images_dir="$T/ref/raw/images" --set ingest.reports="$T/ref/raw/reports.csv" \
  --set ingest.output="$T/ref/records" --set run.dir="$T/ref/r2" >/dev/null 2>&1
"$BIN" label --config "$config" --set label.store="$T/ref/records" --set label.output="$T/ref/labels" --set run.dir="$T/ref/r3" >/dev/null 2>&1

# synth at 2 tasks through the template: the same corpus (a folder tree: compare the files).
id=$(submit synth synth "$config" --set synth.output="$T/w/raw" --set synth.truth="$T/w/truth")
[ "$(wait_job "$id")" = COMPLETED ] || { cat "$T/w/synth.log"; fail "synth job $id did not complete"; }
grep -q "on 2 rank(s)\|2 rank" "$T/w/synth.log" || { cat "$T/w/synth.log"; fail "synth did not run as one world of 2 ranks"; }
# (corpus.json, the generator's record of how it ran — ranks, command — is left out.)
(cd "$T/ref/raw" && find . -type f ! -name corpus.json -exec sha256sum {} + | sort -k2) >"$T/a.txt"
(cd "$T/w/raw" && find . -type f ! -name corpus.json -exec sha256sum {} + | sort -k2) >"$T/b.txt"
cmp -s "$T/a.txt" "$T/b.txt" || { diff "$T/a.txt" "$T/b.txt" | head -n 8; fail "the synthetic corpus of 2 Slurm tasks differs from 1 process"; }
[ "$(digest "$T/w/truth")" = "$(digest "$T/ref/truth")" ] || fail "the truth store of 2 Slurm tasks differs from 1 process"

# ingest, slowed to ~1 s a shard; USR1 to the batch shell once a shard is finished.
export ENDOKED_TEST_SHARD_DELAY_MS=1000
id=$(submit ingest ingest "$config" --set ingest.output="$T/w/records")
wait_first_shard "$T/w/records" "$T/w/ingest.log"
scancel --batch --signal=USR1 "$id"
[ "$(wait_job "$id")" = COMPLETED ] || { cat "$T/w/ingest.log"; scontrol show job "$id"; fail "ingest job $id did not complete after the requeue"; }
[ "$(job_field "$id" Restarts)" = 1 ] || { cat "$T/w/ingest.log"; fail "ingest job $id was not requeued once"; }
if ! grep -q "attempt 1 " "$T/w/ingest.log" || ! grep -q "attempt 2 " "$T/w/ingest.log"; then
  cat "$T/w/ingest.log"; fail "the log lacks an attempt"
fi
grep -q "SIGUSR1 received; forwarding" "$T/w/ingest.log" || { cat "$T/w/ingest.log"; fail "the batch shell did not forward USR1"; }
grep -q "requeueing job $id" "$T/w/ingest.log" || { cat "$T/w/ingest.log"; fail "no requeue after exit 75"; }
grep -q "reused from the interrupted run" "$T/w/ingest.log" || { cat "$T/w/ingest.log"; fail "the second attempt redid every shard"; }
[ "$(digest "$T/w/records")" = "$(digest "$T/ref/records")" ] || fail "the resumed store differs from a 1-rank run"

# label; USR1 to the job step's ranks (scancel --signal without --batch).
id=$(submit label label "$config" --set label.output="$T/w/labels")
wait_first_shard "$T/w/labels" "$T/w/label.log"
scancel --signal=USR1 "$id"
[ "$(wait_job "$id")" = COMPLETED ] || { cat "$T/w/label.log"; fail "label job $id did not complete after the requeue"; }
[ "$(job_field "$id" Restarts)" = 1 ] || { cat "$T/w/label.log"; fail "label job $id was not requeued once"; }
grep -q "reused from the interrupted run" "$T/w/label.log" || { cat "$T/w/label.log"; fail "label's second attempt redid every shard"; }
[ "$(digest "$T/w/labels")" = "$(digest "$T/ref/labels")" ] || fail "the resumed labels differ from a 1-rank run"
unset ENDOKED_TEST_SHARD_DELAY_MS

# mil (training on the engine) at 2 tasks: a straight job, then one slowed to ~0.3 s a step that
# gets USR1 in its job step once the first checkpoint is written: it requeues, resumes from the
# checkpoint, and writes the scores the straight job wrote.
id=$(submit mil-ref mil "$config" --set mil.output="$T/w/mil-ref")
[ "$(wait_job "$id")" = COMPLETED ] || { cat "$T/w/mil-ref.log"; fail "mil job $id did not complete"; }
export ENDOKED_TEST_STEP_DELAY_MS=300
id=$(submit mil mil "$config" --set mil.output="$T/w/mil")
for _ in $(seq 1 240); do
  compgen -G "$T/w/runs/mil-$id/checkpoints/*/latest" >/dev/null && break
  sleep 0.25
done
compgen -G "$T/w/runs/mil-$id/checkpoints/*/latest" >/dev/null || { cat "$T/w/mil.log"; fail "mil wrote no checkpoint"; }
scancel --signal=USR1 "$id"
[ "$(wait_job "$id")" = COMPLETED ] || { cat "$T/w/mil.log"; fail "mil job $id did not complete after the requeue"; }
[ "$(job_field "$id" Restarts)" = 1 ] || { cat "$T/w/mil.log"; fail "mil job $id was not requeued once"; }
grep -q "preempted" "$T/w/mil.log" && grep -q "resumed" "$T/w/mil.log" || { cat "$T/w/mil.log"; fail "mil did not checkpoint at the signal and resume"; }
[ "$(digest "$T/w/mil")" = "$(digest "$T/w/mil-ref")" ] || fail "the resumed mil scores differ from the straight job's"
unset ENDOKED_TEST_STEP_DELAY_MS

# srun without PMIx: refused by endoked itself, naming the fix, instead of Open MPI's abort text.
set +e
timeout 120 srun --mpi=none -N1 -n2 "$BIN" synth --config "$config" --set synth.output="$T/w/x" \
  --set synth.truth="$T/w/xt" --set run.dir="$T/w/rx" >"$T/nopmix.txt" 2>&1
code=$?
set -e
[ "$code" != 0 ] || fail "srun without --mpi=pmix succeeded"
grep -q "srun --mpi=pmix" "$T/nopmix.txt" || { cat "$T/nopmix.txt"; fail "srun without PMIx: the fix is not named"; }
echo "slurm: all checks passed"
