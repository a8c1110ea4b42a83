#!/usr/bin/env python3
"""Bags of real colonoscopy crops for the MIL and localisation benchmarks (benchmarks/mil_real.sh,
benchmarks/refine_real.sh).

usage: mil_real_prep.py KVASIR_DIR OUT_DIR [--seed N] [--crop PX] [--width PX] [--whole MARGIN]
                        [--negatives N] [--test-every K] [--masks]

Every frame is rescaled to one width (the same scale for every crop), then square crops of one
size are cut: a positive crop holds >= 50 % of the frame's polyp mask, a negative crop touches no
mask pixel, so neither size nor scale gives the answer away. Frames are split into train / test by
a hash of their id (no frame on both sides). A positive exam holds 1-3 positive crops among 2-5
negatives, a negative exam 3-7 negatives; every exam gets a short English report stating its
finding. Writes, per split, the hospital layout endoked ingest reads (images/<exam>/<nn>.jpg,
reports.csv) and truth.csv (image, has_polyp) for image AUC.

--whole MARGIN: a positive crop holds the WHOLE mask, at least MARGIN px from every side (frames
whose polyp does not fit give no positive) — for boxes and masks. --negatives: negative crops per
frame (default 3). --test-every K: every K-th frame by hash goes to test (default 5; 0: all train).
--masks: also write each crop's mask (0/255 PNG, all zero for a negative) as masks/<exam>/<nn>.png
beside images/, for `endoked masks eval`, and the positive crops' alone as polyp-masks/<exam>/<nn>.png.
"""
import argparse, csv, hashlib, os, random
import numpy as np
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("kvasir"); ap.add_argument("out")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--crop", type=int, default=160)
ap.add_argument("--width", type=int, default=384)
ap.add_argument("--whole", type=int, default=-1)
ap.add_argument("--negatives", type=int, default=3)
ap.add_argument("--test-every", type=int, default=5)
ap.add_argument("--masks", action="store_true")
a = ap.parse_args()
rng = random.Random(a.seed)
C = a.crop
SEGMENTS = ["caecum", "ascending colon", "transverse colon", "descending colon", "sigmoid colon", "rectum"]

def crops_of(name):
    im = Image.open(os.path.join(a.kvasir, "images", name)).convert("RGB")
    mk = Image.open(os.path.join(a.kvasir, "masks", name)).convert("L")
    h = round(im.height * a.width / im.width)
    im = im.resize((a.width, h), Image.BILINEAR)
    m = np.asarray(mk.resize((a.width, h), Image.NEAREST)) > 127
    total = m.sum()
    if h < C or total == 0:
        return [], []
    cs = np.pad(m.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    inside = lambda x, y: cs[y + C, x + C] - cs[y, x + C] - cs[y + C, x] + cs[y, x]
    r = random.Random(f"{a.seed}:{name}")
    cut = lambda x, y: (im.crop((x, y, x + C, y + C)),
                        Image.fromarray((m[y:y + C, x:x + C] * 255).astype(np.uint8)))
    pos, neg = [], []
    if a.whole >= 0:  # the whole mask inside, `whole` px from every side
        ys, xs = np.nonzero(m)
        lo_x, hi_x = max(0, xs.max() + 1 + a.whole - C), min(a.width - C, xs.min() - a.whole)
        lo_y, hi_y = max(0, ys.max() + 1 + a.whole - C), min(h - C, ys.min() - a.whole)
        if lo_x <= hi_x and lo_y <= hi_y:
            pos.append(cut(r.randint(lo_x, hi_x), r.randint(lo_y, hi_y)))
    for _ in range(400):
        x, y = r.randrange(0, a.width - C + 1), r.randrange(0, h - C + 1)
        v = inside(x, y)
        if a.whole < 0 and v >= 0.5 * total and len(pos) < 1:
            pos.append(cut(x, y))
        elif v == 0 and len(neg) < a.negatives:
            neg.append(cut(x, y))
        if (pos or a.whole >= 0) and len(neg) == a.negatives:
            break
    return pos, neg

names = sorted(os.listdir(os.path.join(a.kvasir, "images")))
split = lambda n: ("test" if a.test_every > 0 and int(hashlib.sha256(n.encode()).hexdigest(), 16)
                   % a.test_every == 0 else "train")
pools = {"train": ([], []), "test": ([], [])}
for n in names:
    p, q = crops_of(n)
    pools[split(n)][0].extend(p)
    pools[split(n)][1].extend(q)

stats = {}
for part, (pos, neg) in pools.items():
    if not pos and not neg:
        continue
    rng.shuffle(pos); rng.shuffle(neg)
    root = os.path.join(a.out, part)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    exams, truth = [], []
    while pos and len(neg) >= 5:
        k = min(len(pos), rng.randint(1, 3))
        items = [(pos.pop(), 1) for _ in range(k)] + [(neg.pop(), 0) for _ in range(rng.randint(2, 5))]
        exams.append(items)
        if len(neg) >= 7 and rng.random() < 0.5:
            exams.append([(neg.pop(), 0) for _ in range(rng.randint(3, 7))])
    rows = []
    npos = 0
    for i, items in enumerate(exams):
        rng.shuffle(items)
        eid = f"KV{part[:2].upper()}{i:05d}"
        os.makedirs(os.path.join(root, "images", eid), exist_ok=True)
        for j, ((crop, mask), label) in enumerate(items):
            f = f"{j:02d}.jpg"
            crop.save(os.path.join(root, "images", eid, f), quality=92)
            if a.masks:
                for d in ("masks", "polyp-masks") if label else ("masks",):
                    os.makedirs(os.path.join(root, d, eid), exist_ok=True)
                    mask.save(os.path.join(root, d, eid, f"{j:02d}.png"))
            truth.append((f"{eid}/{f}", label))
        if any(l for _, l in items):
            npos += 1
            report = (f"Colonoscopy to the caecum, good preparation. A {rng.randint(3, 25)} mm polyp "
                      f"in the {rng.choice(SEGMENTS)}, removed with a snare.")
        else:
            report = "Colonoscopy to the caecum, good preparation. No polyps seen. Normal mucosa."
        rows.append((eid, "kvasir", "en", report))
    with open(os.path.join(root, "reports.csv"), "w", newline="") as f:
        w = csv.writer(f); w.writerow(["exam_id", "centre", "language", "report"]); w.writerows(rows)
    with open(os.path.join(root, "truth.csv"), "w", newline="") as f:
        w = csv.writer(f); w.writerow(["image", "has_polyp"]); w.writerows(truth)
    stats[part] = {"exams": len(exams), "positive_exams": npos, "images": len(truth),
                   "positive_images": sum(l for _, l in truth)}
print(stats)
