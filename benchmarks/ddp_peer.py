#!/usr/bin/python3
"""python3-torch DistributedDataParallel over Gloo, the peer of endoked_bench_ddp: torchvision
ResNet-18, batch 16 per rank at 128x128, SGD (lr 0.01, momentum 0.9), 3 warm-up steps.
Launched under mpirun (RANK/WORLD_SIZE from OMPI_COMM_WORLD_*): the torchrun of python3-torch 1.13
crashes on Python 3.11.
usage: ddp_peer.py THREADS STEPS"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torchvision

rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", 0))
world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", 1))
os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
os.environ.setdefault("MASTER_PORT", "29534")
dist.init_process_group("gloo", rank=rank, world_size=world)
threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torchvision.models.resnet18())
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
torch.manual_seed(1 + rank)
x, y = torch.randn(16, 3, 128, 128), torch.randint(0, 1000, (16,))


def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


for _ in range(3):
    step()
dist.barrier()
t0 = time.perf_counter()
for _ in range(steps):
    step()
s = torch.tensor([time.perf_counter() - t0])
dist.all_reduce(s, op=dist.ReduceOp.MAX)
if rank == 0:
    print(json.dumps({"mode": "python_ddp_gloo", "ranks": world, "threads_per_rank": threads,
                      "steps": steps, "seconds": s.item(), "images_per_s": 16 * world * steps / s.item()}))
dist.destroy_process_group()
