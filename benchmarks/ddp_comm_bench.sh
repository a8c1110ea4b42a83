#!/usr/bin/env bash
# Data-parallel training where gradient exchange is a large share of the step, 2 ranks x 1 thread
# on this machine: endoked DataParallel vs python3-torch DistributedDataParallel over Gloo.
#   models: mlp (4 linear layers 2048x2048, batch 8; 67 MB of gradients per step) and
#           resnet18_32 (ResNet-18 at 32x32, batch 4; 47 MB)
#   each side also runs the same steps without gradient sync (endoked set_sync(false), python
#   DDP no_sync()): exposed communication = median DDP step - median step without sync
#   endoked also with ddp.compression fp16 and bf16 (bytes on the wire per step), and with
#   MPI's own all-reduce instead of the shared-memory one (ENDOKED_NODE_REDUCE=0)
# Same malloc and thread settings everywhere, interleaved rounds, medians.
# → benchmarks/results/ddp_comm.{json,md}
# usage: benchmarks/ddp_comm_bench.sh [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-20}
ROUNDS=${2:-5}
REVISION=$(git describe --always --dirty)
BIN=build/benchmarks/endoked_bench_ddp
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296
MPI=(mpirun -np 2 --oversubscribe --bind-to none)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for round in $(seq "$ROUNDS"); do
  for model in mlp resnet18_32; do
    for mode in ddp nosync; do
      "${MPI[@]}" "$BIN" "$mode" 1 "$STEPS" "$model" 2>/dev/null | grep '^{' >>"$W/r.jsonl"
      "${MPI[@]}" /usr/bin/python3 benchmarks/ddp_peer.py 1 "$STEPS" "$model" "$mode" 2>/dev/null | grep '^{' >>"$W/r.jsonl"
    done
    ENDOKED_NODE_REDUCE=0 "${MPI[@]}" "$BIN" ddp 1 "$STEPS" "$model" 2>/dev/null | grep '^{' | sed 's/"mode":"endoked_ddp"/"mode":"endoked_ddp_mpi"/' >>"$W/r.jsonl"
    for c in fp16 bf16; do
      "${MPI[@]}" "$BIN" ddp 1 "$STEPS" "$model" compression=$c 2>/dev/null | grep '^{' | sed "s/\"mode\":\"endoked_ddp\"/\"mode\":\"endoked_ddp_$c\"/" >>"$W/r.jsonl"
    done
  done
done
/usr/bin/python3 - "$W/r.jsonl" "$REVISION" "$0 $*" <<'PY'
import json, sys, statistics, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(model, mode, key):
    v = [r[key] for r in rows if r["model"] == model and r["mode"] == mode]
    return statistics.median(v) if v else float("nan")
models = ["mlp", "resnet18_32"]
out = {"command": sys.argv[3], "git_revision": sys.argv[2], "ranks": 2, "threads_per_rank": 1,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "summary": {}, "runs": rows}
lines = []
for m in models:
    e_tp, p_tp = med(m, "endoked_ddp", "images_per_s"), med(m, "python_ddp_gloo", "images_per_s")
    e_exp = med(m, "endoked_ddp", "median_step_s") - med(m, "endoked_nosync", "median_step_s")
    p_exp = med(m, "python_ddp_gloo", "median_step_s") - med(m, "python_ddp_gloo_nosync", "median_step_s")
    s = {"endoked_samples_per_s": e_tp, "python_samples_per_s": p_tp, "throughput_ratio": e_tp / p_tp,
         "endoked_exposed_comm_s": e_exp, "python_exposed_comm_s": p_exp, "exposed_ratio": e_exp / p_exp,
         "endoked_step_s": med(m, "endoked_ddp", "median_step_s"),
         "endoked_nosync_step_s": med(m, "endoked_nosync", "median_step_s"),
         "python_step_s": med(m, "python_ddp_gloo", "median_step_s"),
         "python_nosync_step_s": med(m, "python_ddp_gloo_nosync", "median_step_s")}
    s["mpi_allreduce_samples_per_s"] = med(m, "endoked_ddp_mpi", "images_per_s")
    for c in ["none", "fp16", "bf16"]:
        mode = "endoked_ddp" if c == "none" else "endoked_ddp_" + c
        s[f"{c}_samples_per_s"] = med(m, mode, "images_per_s")
        s[f"{c}_wire_bytes_per_step"] = med(m, mode, "wire_bytes_per_step")
    out["summary"][m] = s
json.dump(out, open("benchmarks/results/ddp_comm.json", "w"), indent=2)
with open("benchmarks/results/ddp_comm.md", "w") as f:
    f.write(f"# Communication-bound data parallel, 2 ranks x 1 thread ({out['date']}, {sys.argv[2]})\n\n")
    f.write(f"`{sys.argv[3]}`: medians of interleaved rounds; one 2-core machine. endoked: Open MPI "
            "shared memory (vader); python3-torch DDP: Gloo over TCP loopback (its only CPU transport). "
            "Exposed communication = DDP step − the same step without gradient sync.\n\n")
    f.write("| model | endoked samples/s | python DDP samples/s | ratio (goal MLP ≥ 1.5) | endoked step / no sync (ms) | python step / no sync (ms) | exposed comm endoked / python (ms) | ratio (goal ≤ 0.5) |\n|---|---|---|---|---|---|---|---|\n")
    for m in models:
        s = out["summary"][m]
        f.write(f"| {m} | {s['endoked_samples_per_s']:.1f} | {s['python_samples_per_s']:.1f} | {s['throughput_ratio']:.2f}× | "
                f"{1e3*s['endoked_step_s']:.1f} / {1e3*s['endoked_nosync_step_s']:.1f} | {1e3*s['python_step_s']:.1f} / {1e3*s['python_nosync_step_s']:.1f} | "
                f"{1e3*s['endoked_exposed_comm_s']:.1f} / {1e3*s['python_exposed_comm_s']:.1f} | {s['exposed_ratio']:.2f}× |\n")
    f.write("\n## endoked's all-reduce: shared memory vs MPI's own (ENDOKED_NODE_REDUCE=0)\n\n| model | shared memory samples/s | MPI_Allreduce samples/s | ratio |\n|---|---|---|---|\n")
    for m in models:
        s = out["summary"][m]
        f.write(f"| {m} | {s['endoked_samples_per_s']:.1f} | {s['mpi_allreduce_samples_per_s']:.1f} | {s['endoked_samples_per_s'] / s['mpi_allreduce_samples_per_s']:.2f}× |\n")
    f.write("\n## ddp.compression (endoked)\n\n| model | compression | samples/s | bytes on the wire per rank per step |\n|---|---|---|---|\n")
    for m in models:
        s = out["summary"][m]
        for c in ["none", "fp16", "bf16"]:
            f.write(f"| {m} | {c} | {s[c + '_samples_per_s']:.1f} | {s[c + '_wire_bytes_per_step'] / 2**20:.1f} MiB |\n")
print(open("benchmarks/results/ddp_comm.md").read())
PY
