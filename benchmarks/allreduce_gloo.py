#!/usr/bin/python3
"""c10d Gloo all_reduce bus bandwidth (python3-torch, the same libtorch c10d), launched under
mpirun with RANK/WORLD_SIZE from OMPI_COMM_WORLD_* (the torchrun of python3-torch 1.13 crashes on
Python 3.11). One JSON line per size."""
import json
import os
import sys
import time

import torch
import torch.distributed as dist

rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
world = int(os.environ["OMPI_COMM_WORLD_SIZE"])
os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
os.environ.setdefault("MASTER_PORT", "29533")
dist.init_process_group("gloo", rank=rank, world_size=world)
torch.set_num_threads(1)
budget = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
size = 4 << 10
while size <= (256 << 20):
    t = torch.ones(size // 4)
    dist.all_reduce(t)  # warm-up
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(3):
        dist.all_reduce(t)
    est = torch.tensor([(time.perf_counter() - t0) / 3])
    dist.all_reduce(est, op=dist.ReduceOp.MAX)
    iters = max(3, min(1000, int(budget / est.item())))
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(t)
    e = torch.tensor([time.perf_counter() - t0])
    dist.all_reduce(e, op=dist.ReduceOp.MAX)
    s = e.item() / iters
    if rank == 0:
        bus = 2 * (world - 1) / world * size / 1e9 / s
        print(json.dumps({"mode": "c10d_gloo", "ranks": world, "bytes": size, "seconds": s,
                          "bus_gb_per_s": bus}), flush=True)
    size *= 4
dist.destroy_process_group()
