#!/usr/bin/env bash
# all_reduce bus bandwidth, 4 KiB – 256 MiB, at 2 ranks: endoked (blocking and async buckets)
# vs raw MPI_Allreduce vs c10d Gloo. → benchmarks/results/allreduce.{json,md}
# usage: benchmarks/allreduce_bench.sh [SECONDS_PER_SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-0.5}
REVISION=$(git describe --always --dirty)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mpirun -np 2 --oversubscribe --bind-to none build/benchmarks/endoked_bench_allreduce "$BUDGET" 2>/dev/null | grep '^{' >"$W/r.jsonl"
mpirun -np 2 --oversubscribe --bind-to none /usr/bin/python3 benchmarks/allreduce_gloo.py "$BUDGET" 2>/dev/null | grep '^{' >>"$W/r.jsonl"
/usr/bin/python3 - "$W/r.jsonl" "$REVISION" "$0 $*" <<'PY'
import json, sys, datetime, os
rows = [json.loads(l) for l in open(sys.argv[1])]
modes = ["raw_mpi_allreduce", "endoked_all_reduce", "endoked_async_buckets_x8", "c10d_gloo"]
by = {(r["mode"], r["bytes"]): r["bus_gb_per_s"] for r in rows}
sizes = sorted({r["bytes"] for r in rows})
out = {"command": sys.argv[3], "git_revision": sys.argv[2], "ranks": 2,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "runs": rows}
json.dump(out, open("benchmarks/results/allreduce.json", "w"), indent=2)
def human(b):
    return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"
with open("benchmarks/results/allreduce.md", "w") as f:
    f.write(f"# all_reduce bus bandwidth, 2 ranks, one machine ({out['date']}, {sys.argv[2]})\n\n")
    f.write(f"`{sys.argv[3]}`; GB/s = 2(p−1)/p × bytes / time.\n\n")
    f.write("| size | raw MPI_Allreduce | endoked all_reduce | endoked async ×8 buckets | c10d Gloo | endoked / Gloo |\n|---|---|---|---|---|---|\n")
    for s in sizes:
        cells = [by.get((m, s), float("nan")) for m in modes]
        f.write(f"| {human(s)} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {cells[1] / cells[3]:.1f}× |\n")
print(open("benchmarks/results/allreduce.md").read())
PY
