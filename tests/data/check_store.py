#!/usr/bin/python3
"""Reads an endoked record store with h5py alone and compares it with the expected JSON.

usage: check_store.py STORE EXPECTED.json
EXPECTED: {"exams": [{"id", "report", "images": ["<hex sha256 of the bytes>", ...]}]}
Exit 0 when everything matches; prints what differs otherwise.
"""
import hashlib
import json
import os
import sys

import h5py


def main():
    store, expected_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(store, "manifest.json")) as f:
        manifest = json.load(f)
    with open(expected_path) as f:
        expected = json.load(f)["exams"]
    got = []
    for shard in manifest["shards"]:
        with h5py.File(os.path.join(store, shard["file"]), "r") as h:
            ids = h["exams/id"][:]
            reports = h["exams/report"][:]
            first = h["exams/first_image"][:]
            count = h["exams/image_count"][:]
            offsets = h["images/bytes_offset"][:]
            lengths = h["images/bytes_length"][:]
            blob = h["images/bytes"]
            for i in range(len(ids)):
                images = []
                for k in range(first[i], first[i] + count[i]):
                    data = blob[offsets[k]:offsets[k] + lengths[k]].tobytes()
                    if not data.startswith(b"\xff\xd8\xff"):
                        print(f"image {k} of {ids[i]!r} is not a JPEG")
                        return 1
                    images.append(hashlib.sha256(data).hexdigest())
                got.append({"id": ids[i].decode("utf-8"),
                            "report": reports[i].decode("utf-8"),
                            "images": images})
    if got != expected:
        for g, e in zip(got, expected):
            if g != e:
                print("differs:", json.dumps(g, ensure_ascii=False)[:300], "vs",
                      json.dumps(e, ensure_ascii=False)[:300])
                break
        print(f"{len(got)} exams read, {len(expected)} expected")
        return 1
    print(f"h5py read {len(got)} exams, {sum(len(g['images']) for g in got)} images: match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
