#!/usr/bin/env bash
# Loader throughput: images/s (and per core) at 1 and 2 threads, 224x224 float output from
# ~620x530 JPEGs, against (a) bare libjpeg-turbo full-size decode (the limit) and (b) a Python
# torch DataLoader on the same store (benchmarks/loader_peer.py). Same malloc settings on both
# sides (glibc otherwise returns big buffers to the OS every step, 2–3× slower either way):
# mallopt in the C++ main, GLIBC_TUNABLES for Python.
# usage: benchmarks/loader_bench.sh [KVASIR_DIR] [SECONDS]
#   KVASIR_DIR defaults to ../shared/data/kvasir-seg; without it a synthetic 620x530 store is used.
set -euo pipefail
cd "$(dirname "$0")/.."
KVASIR=${1:-../shared/data/kvasir-seg}
SECONDS_EACH=${2:-8}
BIN=build/apps/endoked/endoked
BENCH=build/benchmarks/endoked_bench_loader
REVISION=$(git describe --always --dirty)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

if [ -d "$KVASIR/images" ]; then
  source="kvasir-seg ($(ls "$KVASIR/images" | wc -l) real frames)"
  /usr/bin/python3 - "$KVASIR/images" >"$W/manifest.jsonl" <<'PY'
import json, os, sys
d = os.path.abspath(sys.argv[1])
for name in sorted(os.listdir(d)):
    print(json.dumps({"exam_id": os.path.splitext(name)[0], "report": "kvasir frame",
                      "images": [os.path.join(d, name)]}))
PY
  "$BIN" ingest --set ingest.layout=jsonl --set ingest.manifest="$W/manifest.jsonl" \
    --set ingest.output="$W/store" --set ingest.shard_size_mb=64 --set run.dir="$W/run" 2>/dev/null
else
  source="synthetic 620x530 frames"
  "$BIN" synth --set synth.exams=120 --set synth.width=620 --set synth.height=530 --set synth.format=store \
    --set synth.output="$W/store" --set synth.truth="$W/truth" --set run.dir="$W/run" 2>/dev/null
fi

export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296
export OMP_NUM_THREADS=1
results="$W/results.jsonl"
# Five interleaved rounds (this machine's speed drifts); the table keeps each mode's median.
for round in 1 2 3 4 5; do
  for t in 1 2; do
    "$BENCH" bare --store "$W/store" --threads $t --seconds "$SECONDS_EACH" >>"$results"
    for dct in 0 1; do
      "$BENCH" loader --store "$W/store" --threads $t --dct $dct --seconds "$SECONDS_EACH" >>"$results"
    done
    "$BENCH" loader --store "$W/store" --threads $t --dct 0 --fast 1 --seconds "$SECONDS_EACH" >>"$results"
    /usr/bin/python3 benchmarks/loader_peer.py "$W/store" --workers $t --seconds "$SECONDS_EACH" >>"$results"
  done
done

/usr/bin/python3 - "$results" "$source" "$REVISION" "$0 $*" <<'PY'
import json, os, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
source, revision, command = sys.argv[2], sys.argv[3], sys.argv[4]
import statistics
runs, cpu_runs = {}, {}
for r in rows:
    runs.setdefault((r["mode"], r["threads"]), []).append(r["images_per_s"])
    if "images_per_cpu_s" in r:
        cpu_runs.setdefault((r["mode"], r["threads"]), []).append(r["images_per_cpu_s"])
by = {k: statistics.median(v) for k, v in runs.items()}
cpu = {k: statistics.median(v) for k, v in cpu_runs.items()}
modes = [("bare_decode_full", "bare full-size decode (limit)"),
         ("endoked_loader_full_decode", "endoked, full decode"),
         ("endoked_loader_dct_scaled", "endoked, DCT-scaled"),
         ("python_dataloader", "Python DataLoader"),
         ("endoked_loader_full_decode_fast", "endoked, full decode, fast IDCT (loader.fast_decode)")]
out = {"command": command, "source": source, "git_revision": revision,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
       "machine": f"{os.cpu_count()} cores", "output": "batches of 32 x 3 x 224 x 224 float32",
       "transforms": "resize 224x224, hflip p=0.5, ImageNet normalise",
       "median_images_per_s": {f"{m}@{t}": by[(m, t)] for m, _ in modes for t in (1, 2)},
       "median_images_per_cpu_s": {f"{m}@{t}": cpu[(m, t)] for m, _ in modes for t in (1, 2) if (m, t) in cpu},
       "runs": rows, "ratios": {}, "cpu_ratios": {}}
for t in (1, 2):
    bare, py = by[("bare_decode_full", t)], by[("python_dataloader", t)]
    out["ratios"][f"{t}_threads"] = {
        **{f"{m}_vs_bare": by[(m, t)] / bare for m, _ in modes if m.startswith("endoked")},
        **{f"{m}_vs_python": by[(m, t)] / py for m, _ in modes if m.startswith("endoked")}}
    out["cpu_ratios"][f"{t}_threads"] = {
        f"{m}_vs_bare": cpu[(m, t)] / cpu[("bare_decode_full", t)] for m, _ in modes if m.startswith("endoked")}
os.makedirs("benchmarks/results", exist_ok=True)
json.dump(out, open("benchmarks/results/loader.json", "w"), indent=2)
with open("benchmarks/results/loader.md", "w") as f:
    f.write(f"# Loader throughput ({out['machine']}, {out['date']}, {revision})\n\n")
    f.write(f"`{command}` on {source}; {out['output']}; {out['transforms']}. "
            "Medians of 5 interleaved rounds; images/s, and per core in brackets.\n\n")
    f.write("| mode | 1 thread | 2 threads | vs bare (1 / 2) | vs Python (1 / 2) |\n|---|---|---|---|---|\n")
    for m, name in modes:
        a, b = by[(m, 1)], by[(m, 2)]
        vb = f"{a / by[('bare_decode_full', 1)]:.2f} / {b / by[('bare_decode_full', 2)]:.2f}"
        vp = f"{a / by[('python_dataloader', 1)]:.2f} / {b / by[('python_dataloader', 2)]:.2f}"
        f.write(f"| {name} | {a:.0f} ({a:.0f}) | {b:.0f} ({b / 2:.0f}) | {vb} | {vp} |\n")
    f.write("\nPer core, from CPU time (images per CPU-second of the whole process, all threads; "
            "time the machine gave to other tenants is not counted, so these ratios are the steadier ones):\n\n")
    f.write("| mode | 1 thread | 2 threads | vs bare (1 / 2) |\n|---|---|---|---|\n")
    for m, name in modes:
        if (m, 1) not in cpu:
            continue
        a, b = cpu[(m, 1)], cpu[(m, 2)]
        f.write(f"| {name} | {a:.0f} | {b:.0f} | {a / cpu[('bare_decode_full', 1)]:.2f} / {b / cpu[('bare_decode_full', 2)]:.2f} |\n")
    f.write("\nGoals: ≥ 2× the Python peer; ≥ 0.8× the bare decode limit at full-size decode (accurate IDCT, as the bare loop); above it with scaled decode.\n")
print(open("benchmarks/results/loader.md").read())
PY
