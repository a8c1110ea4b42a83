#!/usr/bin/python3
"""The Python peer of the loader benchmark: torch.utils.data.DataLoader over the same record
store read with h5py, decoded with cv2, the same transforms (resize 224x224, random horizontal
flip, ImageNet normalisation), batches of 32, `--workers` worker processes.

usage: loader_peer.py STORE --workers N [--seconds S]   → one JSON line
Run with the same malloc settings as the C++ side (GLIBC_TUNABLES, see loader_bench.sh).
"""
import argparse
import json
import os
import time

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class StoreDataset(Dataset):
    def __init__(self, store):
        self.store = store
        with open(os.path.join(store, "manifest.json")) as f:
            manifest = json.load(f)
        self.index = []  # (shard file, row)
        for shard in manifest["shards"]:
            for row in range(shard["images"]):
                self.index.append((shard["file"], row))
        self.files = {}
        self.columns = {}

    def _open(self, name):
        if name not in self.files:  # opened lazily, once per worker process
            f = h5py.File(os.path.join(self.store, name), "r")
            self.files[name] = f
            self.columns[name] = (f["images/bytes"], f["images/bytes_offset"][:], f["images/bytes_length"][:])
        return self.columns[name]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        name, row = self.index[i]
        blob, offsets, lengths = self._open(name)
        data = blob[offsets[row]:offsets[row] + lengths[row]]
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_LINEAR)
        if np.random.rand() < 0.5:
            rgb = rgb[:, ::-1]
        x = (rgb.astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def init_worker(_):
    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("store")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seconds", type=float, default=8)
    a = p.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    ds = StoreDataset(a.store)
    loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=a.workers,
                        worker_init_fn=init_worker, persistent_workers=True, prefetch_factor=4)
    it = iter(loader)
    for _ in range(4):  # warm-up: workers started, files open
        next(it)
    images, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < a.seconds:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        images += batch.shape[0]
    s = time.perf_counter() - t0
    print(json.dumps({"mode": "python_dataloader", "threads": a.workers, "images": images,
                      "seconds": s, "images_per_s": images / s, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
