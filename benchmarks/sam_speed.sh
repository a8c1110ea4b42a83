#!/usr/bin/env bash
# SAM speed on this machine's CPUs (random weights; the cost does not depend on them): per variant
# (MobileSAM's TinyViT; the SAM ViT-B shape) at 1 and 2 intra-op threads, the image encoder through
# our predictor path (decode, resize, normalise, pad, encode) next to the bare LibTorch encoder
# forward on a ready tensor (the limit), and a box prompt to a full-size mask; peak RSS. Ratios
# against the official Python predictor with MobileSAM on the same kind of 2-core machine
# (issue 14: 3.9 s / 2.0 s encoder, 220 / 108 ms per box prompt at 1 / 2 threads; goals ≤ 0.9×
# and ≤ 0.5×).
#   → benchmarks/results/sam_speed.{json,md}
# usage: benchmarks/sam_speed.sh KVASIR_DIR [REPEATS] [VARIANTS=vit_t,vit_b]
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
md += ["", "Peak RSS is the process's high-water mark so far: vit_t ran first, then vit_b."]
open("benchmarks/results/sam_speed.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
exit
}
