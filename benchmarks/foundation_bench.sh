#!/usr/bin/env bash
# Throughput of the foundation stages on this machine, written to benchmarks/results/:
#   synth  (store format, 320x256 frames)  at 1 rank x 2 threads and 2 ranks x 1 thread
#   ingest (the raw synthetic corpus)       at 1 rank x 2 threads and 2 ranks x 1 thread
#   store verify --deep                     (single process)
# usage: benchmarks/foundation_bench.sh [EXAMS]      (default 600 exams ≈ 4,200 frames)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/apps/endoked/endoked
EXAMS=${1:-600}
REVISION=$(git describe --always --dirty)
OUT=benchmarks/results
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi2() { mpirun -np 2 --oversubscribe --bind-to none "$@"; }
metric() {  # metric RUN_DIR STAGE KEY
  /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1] + "/metrics.jsonl"):
    r = json.loads(l)
    if r.get("stage") == sys.argv[2]: v = r["summary"][sys.argv[3]]
print(v)' "$1" "$2" "$3"
}
common=(--set synth.exams="$EXAMS" --set synth.seed=3 --set synth.exams_per_shard=50 --set synth.overwrite=true)

"$BIN" synth "${common[@]}" --set synth.format=store --set synth.threads=2 \
  --set synth.output="$W/s1" --set synth.truth="$W/t1" --set run.dir="$W/r-s1" 2>/dev/null
mpi2 "$BIN" synth "${common[@]}" --set synth.format=store --set synth.threads=1 \
  --set synth.output="$W/s2" --set synth.truth="$W/t2" --set run.dir="$W/r-s2" 2>/dev/null
"$BIN" synth "${common[@]}" --set synth.format=raw --set synth.threads=2 \
  --set synth.output="$W/raw" --set synth.truth="$W/traw" --set run.dir="$W/r-raw" 2>/dev/null

ing=(--set ingest.images_dir="$W/raw/images" --set ingest.reports="$W/raw/reports.csv" --set ingest.shard_size_mb=4)
"$BIN" ingest "${ing[@]}" --set ingest.threads=2 --set ingest.output="$W/i1" --set run.dir="$W/r-i1" 2>/dev/null
mpi2 "$BIN" ingest "${ing[@]}" --set ingest.threads=1 --set ingest.output="$W/i2" --set run.dir="$W/r-i2" 2>/dev/null
start=$(/usr/bin/python3 -c "import time; print(time.time())")
"$BIN" store verify --deep "$W/i1" >/dev/null 2>&1
verify_s=$(/usr/bin/python3 -c "import time,sys; print(round(time.time() - float(sys.argv[1]), 3))" "$start")

images=$(metric "$W/r-s1" synth images)
same=$([ "$(metric "$W/r-s1" synth content_sha256)" = "$(metric "$W/r-s2" synth content_sha256)" ] && echo true || echo false)
cat >"$OUT/foundation.json" <<JSON
{
  "command": "benchmarks/foundation_bench.sh $EXAMS",
  "machine": "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "git_revision": "$REVISION",
  "images": $images,
  "frame_size": "320x256",
  "synth_images_per_s": {"1rank_x2threads": $(metric "$W/r-s1" synth images_per_s), "2ranks_x1thread": $(metric "$W/r-s2" synth images_per_s)},
  "synth_same_content_1_vs_2_ranks": $same,
  "ingest_images_per_s": {"1rank_x2threads": $(metric "$W/r-i1" ingest images_per_s), "2ranks_x1thread": $(metric "$W/r-i2" ingest images_per_s)},
  "verify_deep_seconds": $verify_s
}
JSON
/usr/bin/python3 - "$OUT/foundation.json" >"$OUT/foundation.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"# Foundation throughput ({r['machine']}, {r['date']}, {r['git_revision']})\n")
print(f"`{r['command']}` — {r['images']} frames of {r['frame_size']}\n")
print("| stage | 1 rank × 2 threads | 2 ranks × 1 thread |")
print("|---|---|---|")
for k, name in (("synth_images_per_s", "synth (images/s)"), ("ingest_images_per_s", "ingest, decode check (images/s)")):
    print(f"| {name} | {r[k]['1rank_x2threads']:.0f} | {r[k]['2ranks_x1thread']:.0f} |")
print(f"\nstore verify --deep: {r['verify_deep_seconds']:.2f} s for {r['images']} images. "
      f"Same synthetic store on 1 and 2 ranks: {r['synth_same_content_1_vs_2_ranks']}.")
rate = r['synth_images_per_s']['1rank_x2threads']
print(f"\nA million frames at this rate: {1e6 / rate / 60:.0f} min on one 2-core node; synth scales by ranks.")
PY
cat "$OUT/foundation.md"
