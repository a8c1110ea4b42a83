#!/usr/bin/env bash
# ResNet-18 data-parallel throughput (batch 16 per rank, 128x128, SGD) on this machine:
#   (a) plain LibTorch loop, 1 process x 2 threads   (b) endoked DDP, 1 rank x 2 threads
#   (c) endoked DDP, 2 ranks x 1 thread               (d) python3-torch DDP over Gloo, 2 ranks x 1 thread
# Same malloc settings everywhere. → benchmarks/results/ddp.{json,md}
# usage: benchmarks/ddp_bench.sh [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-15}
ROUNDS=${2:-3}
REVISION=$(git describe --always --dirty)
BIN=build/benchmarks/endoked_bench_ddp
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for round in $(seq "$ROUNDS"); do
  "$BIN" plain 2 "$STEPS" 2>/dev/null | sed 's/^{/{"case":"a",/' >>"$W/r.jsonl"
  "$BIN" ddp 2 "$STEPS" 2>/dev/null | sed 's/^{/{"case":"b",/' >>"$W/r.jsonl"
  mpirun -np 2 --oversubscribe --bind-to none "$BIN" ddp 1 "$STEPS" 2>/dev/null | grep '^{' | sed 's/^{/{"case":"c",/' >>"$W/r.jsonl"
  mpirun -np 2 --oversubscribe --bind-to none /usr/bin/python3 benchmarks/ddp_peer.py 1 "$STEPS" 2>/dev/null | grep '^{' | sed 's/^{/{"case":"d",/' >>"$W/r.jsonl"
done
/usr/bin/python3 - "$W/r.jsonl" "$REVISION" "$0 $*" <<'PY'
import json, sys, statistics, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {c: statistics.median(r["images_per_s"] for r in rows if r["case"] == c) for c in "abcd"}
names = {"a": "plain LibTorch loop, 1 process x 2 threads", "b": "endoked DDP, 1 rank x 2 threads",
         "c": "endoked DDP, 2 ranks x 1 thread", "d": "python3-torch DDP (Gloo), 2 ranks x 1 thread"}
ratios = {"c/a (goal >= 0.95)": med["c"] / med["a"], "c/d (goal >= 1.15)": med["c"] / med["d"],
          "b/a (goal within 1 %)": med["b"] / med["a"]}
out = {"command": sys.argv[3], "git_revision": sys.argv[2], "median_images_per_s": med,
       "ratios": ratios, "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "runs": rows}
json.dump(out, open("benchmarks/results/ddp.json", "w"), indent=2)
with open("benchmarks/results/ddp.md", "w") as f:
    f.write(f"# ResNet-18 data-parallel throughput ({out['date']}, {sys.argv[2]})\n\n")
    f.write(f"`{sys.argv[3]}`: batch 16 per rank, 128x128, SGD; medians of the rounds; one 2-core machine.\n\n")
    f.write("| case | images/s |\n|---|---|\n")
    for c in "abcd":
        f.write(f"| ({c}) {names[c]} | {med[c]:.1f} |\n")
    f.write("\n| ratio | value |\n|---|---|\n")
    for k, v in ratios.items():
        f.write(f"| {k} | {v:.3f} |\n")
print(open("benchmarks/results/ddp.md").read())
PY
