#!/usr/bin/python3
"""python3-torch DistributedDataParallel over Gloo (TCP loopback on one machine), the peer of
endoked_bench_ddp: the same models, batches and SGD (lr 0.01, momentum 0.9), 3 warm-up steps.
MODEL: resnet18_128 (torchvision ResNet-18, batch 16 at 128x128; default), resnet18_32 (batch 4 at
32x32), mlp (4 linear layers 2048x2048 with ReLU, batch 8, MSE). MODE: ddp, or nosync (the same
steps inside DDP's no_sync(): no gradient exchange), or fp16 (DDP's fp16_compress_hook).
Launched under mpirun (RANK/WORLD_SIZE from OMPI_COMM_WORLD_*): the torchrun of python3-torch 1.13
crashes on Python 3.11.
usage: ddp_peer.py THREADS STEPS [MODEL] [MODE]"""
import contextlib
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
name = sys.argv[3] if len(sys.argv) > 3 else "resnet18_128"
mode = sys.argv[4] if len(sys.argv) > 4 else "ddp"
torch.set_num_threads(threads)
torch.manual_seed(0)
if name == "mlp":
    layers = []
    for i in range(4):
        layers.append(torch.nn.Linear(2048, 2048))
        if i < 3:
            layers.append(torch.nn.ReLU())
    net, batch = torch.nn.Sequential(*layers), 8
else:
    net, batch = torchvision.models.resnet18(), 4 if name == "resnet18_32" else 16
model = torch.nn.parallel.DistributedDataParallel(net)
if mode == "fp16":
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    model.register_comm_hook(None, default_hooks.fp16_compress_hook)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
torch.manual_seed(1 + rank)
if name == "mlp":
    x, y = torch.randn(batch, 2048), torch.randn(batch, 2048)
    loss_fn = torch.nn.functional.mse_loss
else:
    side = 32 if name == "resnet18_32" else 128
    x, y = torch.randn(batch, 3, side, side), torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.functional.cross_entropy
times = []


def step():
    t = time.perf_counter()
    opt.zero_grad()
    with model.no_sync() if mode == "nosync" else contextlib.nullcontext():
        loss_fn(model(x), y).backward()
    opt.step()
    times.append(time.perf_counter() - t)


for _ in range(3):
    step()
times.clear()
dist.barrier()
t0 = time.perf_counter()
for _ in range(steps):
    step()
s = torch.tensor([time.perf_counter() - t0, sorted(times)[steps // 2]], dtype=torch.float64)
dist.all_reduce(s, op=dist.ReduceOp.MAX)
if rank == 0:
    print(json.dumps({"mode": "python_ddp_gloo" + ("" if mode == "ddp" else "_" + mode),
                      "model": name, "ranks": world, "threads_per_rank": threads, "steps": steps,
                      "seconds": s[0].item(), "median_step_s": s[1].item(),
                      "images_per_s": batch * world * steps / s[0].item()}))
dist.destroy_process_group()
