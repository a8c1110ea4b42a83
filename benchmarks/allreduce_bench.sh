#!/usr/bin/env bash
# all_reduce bus bandwidth and latency, 4 KiB – 256 MiB, at 2 ranks on this machine:
#   raw MPI_Allreduce (the reference), endoked all_reduce (blocking), endoked all_reduce_async with
#   the blocking and polling progress policies — idle, and with a compute thread beside them on
#   every rank ("loaded") — over Open MPI shared memory (btl self,vader) and over TCP loopback
#   (btl self,tcp: what a network stack costs), beside c10d Gloo (TCP loopback, its only CPU
#   transport). Medians of interleaved rounds. → benchmarks/results/allreduce.{json,md}
# usage: benchmarks/allreduce_bench.sh [SECONDS_PER_MEASUREMENT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${1:-0.15}
ROUNDS=${2:-3}
REVISION=$(git describe --always --dirty)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# Over TCP endoked's shared-memory all-reduce is off (ENDOKED_NODE_REDUCE=0): every byte goes
# through MPI over the network stack, as between nodes.
for transport in vader tcp; do
  [ "$transport" = tcp ] && export ENDOKED_NODE_REDUCE=0
  mpirun -np 2 --oversubscribe --bind-to none --mca btl self,$transport \
    build/benchmarks/endoked_bench_allreduce "$BUDGET" "$ROUNDS" 2>/dev/null | grep '^{' |
    sed "s/^{/{\"transport\":\"$transport\",/" >>"$W/r.jsonl"
done
mpirun -np 2 --oversubscribe --bind-to none /usr/bin/python3 benchmarks/allreduce_gloo.py "$BUDGET" 2>/dev/null |
  grep '^{' | sed 's/^{/{"transport":"gloo_tcp",/' >>"$W/r.jsonl"
/usr/bin/python3 - "$W/r.jsonl" "$REVISION" "$0 $*" <<'PY'
import json, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["transport"], r["mode"], r["bytes"]): r for r in rows}
sizes = sorted({r["bytes"] for r in rows})
def gb(t, m, s): return by[(t, m, s)]["bus_gb_per_s"] if (t, m, s) in by else float("nan")
def us(t, m, s): return by[(t, m, s)]["seconds"] * 1e6
def human(b): return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"
big = [s for s in sizes if s >= 1 << 20]
goals = {}
for t in ["vader", "tcp"]:
    for load in ["", "_loaded"]:
        goals[f"{t}{load} async_blocking / raw bandwidth, min over >= 1 MiB (goal >= 0.9)"] = min(
            gb(t, "async_blocking" + load, s) / gb(t, "raw_mpi_allreduce" + load, s) for s in big)
        goals[f"{t}{load} async_blocking / raw latency at 4 KiB (goal <= 2)"] = \
            us(t, "async_blocking" + load, 4096) / us(t, "raw_mpi_allreduce" + load, 4096)
out = {"command": sys.argv[3], "git_revision": sys.argv[2], "ranks": 2,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "goals": goals, "runs": rows}
json.dump(out, open("benchmarks/results/allreduce.json", "w"), indent=2)
with open("benchmarks/results/allreduce.md", "w") as f:
    f.write(f"# all_reduce, 2 ranks, one 2-core machine ({out['date']}, {sys.argv[2]})\n\n")
    f.write(f"`{sys.argv[3]}`: medians of interleaved rounds. Bus bandwidth GB/s = 2(p−1)/p × bytes / time. "
            "async = `all_reduce_async` + `wait` through the communication thread; loaded = a thread of "
            "128×128 matrix products beside them on every rank; kept = the share of its rate alone it kept.\n\n")
    for t, name in [("vader", "Open MPI shared memory (btl self,vader)"), ("tcp", "Open MPI over TCP loopback (btl self,tcp)")]:
        f.write(f"## {name}\n\n| size | raw MPI_Allreduce | endoked all_reduce | async blocking | async polling | "
                "loaded: raw | loaded: async blocking | loaded: async polling | kept raw / blocking / polling |"
                + (" c10d Gloo (TCP) | endoked async / Gloo |" if t == "tcp" else "") + "\n|" + "---|" * (11 if t == "tcp" else 9) + "\n")
        for s in sizes:
            kept = "/".join(f"{by[(t, m + '_loaded', s)]['compute_kept']:.2f}" for m in ["raw_mpi_allreduce", "async_blocking", "async_polling"])
            cells = [gb(t, m, s) for m in ["raw_mpi_allreduce", "endoked_all_reduce", "async_blocking", "async_polling",
                                          "raw_mpi_allreduce_loaded", "async_blocking_loaded", "async_polling_loaded"]]
            line = f"| {human(s)} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {kept} |"
            if t == "tcp":
                g = gb("gloo_tcp", "c10d_gloo", s)
                line += f" {g:.2f} | {gb(t, 'async_blocking', s) / g:.1f}× |"
            f.write(line + "\n")
        f.write(f"\nLatency at 4 KiB: raw {us(t, 'raw_mpi_allreduce', 4096):.1f} µs, async blocking "
                f"{us(t, 'async_blocking', 4096):.1f} µs, async polling {us(t, 'async_polling', 4096):.1f} µs; loaded: raw "
                f"{us(t, 'raw_mpi_allreduce_loaded', 4096):.1f} µs, async blocking {us(t, 'async_blocking_loaded', 4096):.1f} µs.\n\n")
    f.write("## Goals\n\n| check | value |\n|---|---|\n")
    for k, v in goals.items():
        f.write(f"| {k} | {v:.2f} |\n")
print(open("benchmarks/results/allreduce.md").read())
PY
