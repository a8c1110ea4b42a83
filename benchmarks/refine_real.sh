#!/usr/bin/env bash
# The refiners on real frames from the TRUE boxes: Kvasir-SEG's 900 frames with their expert
# masks; per refiner (box, ellipse, grabcut) and box mode (the mask's bounding box / one box per
# 8-connected component) mean Dice and IoU as PraNet computes them, over every frame and over the
# masks the default acceptance rules keep, reject reasons, ms per image.
#   → benchmarks/results/refine_real.{json,md}
# usage: benchmarks/refine_real.sh KVASIR_DIR [LIMIT]   (e.g. ../shared/data/kvasir-seg)
# Part (b) of issue 13 — the same from the CAM boxes of a localisation classifier trained on the
# MIL real-data run's selection — is not measured yet.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: benchmarks/refine_real.sh KVASIR_DIR [LIMIT]}
LIMIT=${2:-0}
REVISION=$(git describe --always --dirty)
t0=$(date +%s.%N)
build/benchmarks/endoked_bench_refine "$DATA/images" "$DATA/masks" "$LIMIT" "${THREADS:-$(nproc)}" > /tmp/refine_real.$$.json
t1=$(date +%s.%N)
/usr/bin/python3 - /tmp/refine_real.$$.json "$REVISION" "$0 $*" "$t0" "$t1" <<'PY'
import json, os, sys, datetime, platform
src, rev, cmd, t0, t1 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
r = json.load(open(src)); os.remove(src)
out = {"command": cmd, "git_revision": rev, "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
       "machine": f"{os.cpu_count()} cores, {platform.machine()}", "from": "true boxes (expert masks)",
       "images": r["images"], "refiners": r["refiners"], "seconds": t1 - t0}
json.dump(out, open("benchmarks/results/refine_real.json", "w"), indent=2)
md = [f"# Refiners on Kvasir-SEG from the true boxes ({out['date']}, {rev})", "",
      f"`{cmd}` on {out['machine']}, {r['images']} frames, {t1 - t0:.0f} s. Boxes from the expert masks: "
      "`union` = the mask's bounding box, `components` = one box per 8-connected component. Dice / IoU "
      "per image as PraNet computes them (vision::segmentation_score), averaged; `accepted` by the "
      "default acceptance rules (refine.accept).", "",
      "| refiner | boxes | Dice | IoU | accepted | Dice (accepted) | rejects | ms / image |", "|---|---|---|---|---|---|---|---|"]
for name, modes in r["refiners"].items():
    for mode, v in modes.items():
        md.append(f"| {name} | {mode} | {v['dice']:.3f} | {v['iou']:.3f} | {v['accepted']} | {v['dice_accepted']:.3f} | "
                  f"{', '.join(f'{k} {n}' for k, n in v['rejects'].items()) or '–'} | {v['ms_per_image']:.1f} |")
md += ["", "Not yet measured: the same from the CAM boxes of the localisation classifier (issue 13, part b)."]
open("benchmarks/results/refine_real.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
