#!/usr/bin/env bash
# SAM speed on this machine's CPUs (random weights; the cost does not depend on them): per variant
# (MobileSAM's TinyViT; the SAM ViT-B shape) at 1 and 2 intra-op threads, the image encoder through
# our predictor path (decode, resize, normalise, pad, encode) next to the bare LibTorch encoder
# forward on a ready tensor (the limit), and a box prompt to a full-size mask; peak RSS; for
# vit_t also two images on 2 cores (one batch vs side by side) and the refine stage's path with and
# without the feature cache (images/s). Ratios
# against the official Python predictor with MobileSAM on the same kind of 2-core machine
# (issue 14: 3.9 s / 2.0 s encoder, 220 / 108 ms per box prompt at 1 / 2 threads; goals ≤ 0.9×
# and ≤ 0.5×).
#   → benchmarks/results/sam_speed.{json,md}
# usage: benchmarks/sam_speed.sh KVASIR_DIR [REPEATS] [VARIANTS=vit_t,vit_b]
#   (a variant left out keeps its last result, marked with that run's date and revision)
set -euo pipefail
{
cd "$(dirname "$0")/.."
DATA=${1:?usage: benchmarks/sam_speed.sh KVASIR_DIR [REPEATS] [VARIANTS]}
REPEATS=${2:-3}
VARIANTS=${3:-vit_t,vit_b}
REVISION=$(git describe --always --dirty)
IMAGE="$DATA/images/cju0qkwl35piu0993l0dewei2.jpg"   # 622 × 529, the anchor's frame size
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
build/benchmarks/endoked_bench_sam_speed "$IMAGE" "$REPEATS" "$VARIANTS" > "$OUT"
/usr/bin/python3 - "$OUT" "$REVISION" "$0 $*" <<'PY'
import json, os, sys, datetime, platform
r = json.load(open(sys.argv[1]))
r.update({"command": sys.argv[3], "git_revision": sys.argv[2],
          "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
          "machine": f"{os.cpu_count()} cores, {platform.machine()}",
          "python_anchor_mobilesam": {"threads_1": {"encoder_ms": 3900, "prompt_to_mask_ms": 220},
                                      "threads_2": {"encoder_ms": 2000, "prompt_to_mask_ms": 108},
                                      "source": "issue 14 (official predictor, 622×529 Kvasir frame, 2-core machine)"}})
# A variant not run this time keeps its last result, marked with that run's date and revision.
if os.path.exists("benchmarks/results/sam_speed.json"):
    last = json.load(open("benchmarks/results/sam_speed.json"))
    for v, x in last.get("variants", {}).items():
        if v not in r["variants"]:
            x.setdefault("from_run", {"date": last.get("date"), "git_revision": last.get("git_revision")})
            r["variants"][v] = x
a = r["python_anchor_mobilesam"]
t = r["variants"].get("vit_t")
if t:
    r["ratios_vs_python_mobilesam"] = {
        th: {"encoder": t[th]["encoder_ms"] / a[th]["encoder_ms"],
             "prompt_to_mask": t[th]["prompt_to_mask_ms"] / a[th]["prompt_to_mask_ms"]} for th in ("threads_1", "threads_2")}
json.dump(r, open("benchmarks/results/sam_speed.json", "w"), indent=2)
md = [f"# SAM speed on CPU ({r['date']}, {r['git_revision']})", "",
      f"`{r['command']}` on {r['machine']}; a {r['image']['width']}×{r['image']['height']} Kvasir frame; "
      f"median of {r['repeats']} runs; random weights. `encoder`: our predictor path (JPEG decode, resize "
      "to 1024, normalise, pad, encode); `bare forward`: the LibTorch encoder forward alone on a ready "
      "tensor (the limit); `prompt → mask`: prompt encoder, mask decoder (3 masks), the best upscaled "
      "to the original size and thresholded.", "",
      "| variant | threads | encoder ms | bare forward ms | prompt → mask ms | peak RSS MiB |", "|---|---|---|---|---|---|"]
for v, x in r["variants"].items():
    for th in ("threads_1", "threads_2"):
        md.append(f"| {x['variant']} | {th[-1]} | {x[th]['encoder_ms']:.0f} | {x[th]['bare_encoder_forward_ms']:.0f} | "
                  f"{x[th]['prompt_to_mask_ms']:.1f} | {x['peak_rss_mib']:.0f} |")
if t:
    q = r["ratios_vs_python_mobilesam"]
    md += ["", "Against the official Python predictor with MobileSAM (issue 14's anchor; goals: encoder ≤ 0.9×, "
           "prompt → mask ≤ 0.5×):", "", "| threads | encoder | prompt → mask |", "|---|---|---|"]
    md += [f"| {th[-1]} | {q[th]['encoder']:.2f}× | {q[th]['prompt_to_mask']:.2f}× |" for th in ("threads_1", "threads_2")]
if t:
    two, st, sb = t["two_images_2_cores"], t["stage_path"], t["threads_2"]["prompt_to_mask_side_by_side_ms_per_image"]
    md += ["", "How the refine stage uses 2 cores (vit_t; ms per image):", "",
           "| work | one pass, 2 intra-op threads | side by side, 1 intra-op thread each |", "|---|---|---|",
           f"| encoder, 2 images | {two['batch_of_2_ms_per_image']:.0f} (a batch of 2) | {two['side_by_side_ms_per_image']:.0f} |",
           f"| prompt → mask | {t['threads_2']['prompt_to_mask_ms']:.1f} | {sb:.1f} ({sb / a['threads_2']['prompt_to_mask_ms']:.2f}× of Python's 108) |",
           "", "So the stage encodes in batches on all its threads and decodes side by side. The stage's "
           f"path (decode JPEG, embedding, one box prompt, scores) over {st['images']} images on 2 threads, batch "
           f"{st['batch']}: **{st['images_per_s_encoding']:.2f} images/s** computing the embeddings, "
           f"**{st['images_per_s_cached']:.1f} images/s** reading them from the feature cache (checksum included; "
           f"{st['cache_bytes_per_image'] / 2**20:.0f} MiB an image) with one decoder at a time, "
           f"{st['decoders_side_by_side']['images_per_s_cached']:.1f} images/s with the decoders side by side (the stage's way)."]
md += ["", "Peak RSS is the process's high-water mark so far: vit_t ran first (with the two-image and "
       "stage-path runs), then vit_b."]
md += [f"{x['variant']}: from the run of {x['from_run']['date']} ({x['from_run']['git_revision']})."
       for x in r["variants"].values() if "from_run" in x]
open("benchmarks/results/sam_speed.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
exit
}
