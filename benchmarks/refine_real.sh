#!/usr/bin/env bash
# The refiners on real frames (Kvasir-SEG's 900 frames with their expert masks), two parts:
#  (a) from the TRUE boxes: per refiner (box, ellipse, grabcut) and box mode (the mask's bounding
#      box / one box per 8-connected component) mean Dice and IoU as PraNet computes them, over
#      every frame and over the masks the default acceptance rules keep, reject reasons, ms/image.
#  (b) from the CAM boxes, nothing but report labels in the loop: square crops at one scale
#      (benchmarks/mil_real_prep.py --whole: a positive crop holds a whole polyp, a negative none)
#      in exams with reports → ingest → label (rules) → mil → localise (a CAM classifier on MIL's
#      selection; boxes by EndoKED's rules, with the default CAM settings and the demo's) → refine
#      with every refiner → masks eval of the ACCEPTED masks against the expert masks (a mask on a
#      polyp-free crop counts with Dice 0 in "all"; "polyp crops" scores those with a polyp).
#      EndoKED's setting: the masks are pseudo-labels of the training corpus itself; the masks never
#      enter training.
#   → benchmarks/results/refine_real.{json,md} (a part that is not rerun keeps its last result)
# usage: benchmarks/refine_real.sh KVASIR_DIR [LIMIT]   (e.g. ../shared/data/kvasir-seg)
#   PARTS="a b" (default; "none" rewrites the markdown only), THREADS (default nproc); LIMIT caps part (a)'s frames (0: all);
#   WEIGHTS=resnet18-f37072fd.pth (torchvision's ImageNet ResNet-18, as published): part (b)'s MIL
#   and localisation backbones start from it at full width (64) instead of from scratch at 24.
set -euo pipefail
{ # read whole before it runs: editing the file meanwhile cannot change a running benchmark
cd "$(dirname "$0")/.."
DATA=${1:?usage: benchmarks/refine_real.sh KVASIR_DIR [LIMIT]}
LIMIT=${2:-0}
ARGS="$*"
PARTS=${PARTS:-a b}
THREADS=${THREADS:-$(nproc)}
BIN=build/apps/endoked/endoked
REVISION=$(git describe --always --dirty)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
RESULT=benchmarks/results/refine_real.json

# Stores one part's result (a JSON object in file $2) under key $1 of $RESULT with the command,
# the revision and the date; the other part's last result stays.
save_part() {
  /usr/bin/python3 - "$1" "$2" "$RESULT" "$REVISION" "$0 $ARGS" <<'PY'
import json, os, sys, datetime
key, src, dst, rev, cmd = sys.argv[1:6]
old = json.load(open(dst)) if os.path.exists(dst) else {}
old = old if "true_boxes" in old or "cam_boxes" in old else {}
part = {"command": cmd, "git_revision": rev,
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")}
part.update(json.load(open(src)))
old[key] = part
json.dump(old, open(dst, "w"), indent=2)
PY
}

if [[ " $PARTS " == *" a "* ]]; then
  t0=$(date +%s.%N)
  build/benchmarks/endoked_bench_refine "$DATA/images" "$DATA/masks" "$LIMIT" "$THREADS" > "$W/a.json"
  t1=$(date +%s.%N)
  /usr/bin/python3 - "$W/a.json" "$t0" "$t1" > "$W/a-part.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
json.dump({"images": r["images"], "refiners": r["refiners"],
           "seconds": float(sys.argv[3]) - float(sys.argv[2])}, sys.stdout)
PY
  save_part true_boxes "$W/a-part.json"
fi

if [[ " $PARTS " == *" b "* ]]; then
  t0=$(date +%s.%N)
  /usr/bin/python3 benchmarks/mil_real_prep.py "$DATA" "$W/raw" --whole 6 --crop 192 --negatives 5 \
    --test-every 0 --masks > "$W/prep.txt"
  R=$W/raw/train
  "$BIN" ingest --set ingest.images_dir="$R/images" --set ingest.reports="$R/reports.csv" \
    --set ingest.output="$W/records" --set run.dir="$W/run-ingest" > "$W/ingest.log" 2>&1
  "$BIN" label --set label.store="$W/records" --set label.output="$W/labels" \
    --set run.dir="$W/run-label" > "$W/label.log" 2>&1
  t1=$(date +%s.%N)
  WIDTH=24
  mil_w=() loc_w=()
  if [ -n "${WEIGHTS:-}" ]; then
    WIDTH=64
    mil_w=(--set mil.model.weights="$WEIGHTS")
    loc_w=(--set localise.model.weights="$WEIGHTS")
  fi
  "$BIN" mil --set mil.store="$W/records" --set mil.labels="$W/labels" --set mil.truth="$R/truth.csv" \
    --set mil.output="$W/mil" --set run.dir="$W/run-mil" --set mil.model.width=$WIDTH --set mil.image_size=128 \
    --set mil.trainer.epochs=16 --set mil.threads="$THREADS" "${mil_w[@]}" > "$W/mil.log" 2>&1
  t2=$(date +%s.%N)
  loc=(--set localise.store="$W/records" --set localise.scores="$W/mil" --set localise.threads="$THREADS"
       --set localise.image_size=192 --set localise.model.width=$WIDTH --set localise.trainer.epochs=16
       --set localise.trainer.checkpoint.dir="$W/ckpt" "${loc_w[@]}")
  "$BIN" localise "${loc[@]}" --set localise.output="$W/boxes-default" --set run.dir="$W/run-loc-default" \
    > "$W/loc-default.log" 2>&1
  t3=$(date +%s.%N)
  # The same classifier (its checkpoint), the demo's CAM settings: only the boxes are redone.
  "$BIN" localise "${loc[@]}" --set localise.output="$W/boxes-demo" --set run.dir="$W/run-loc-demo" \
    --set "localise.cam.scales=[1.0,1.5]" --set localise.box.threshold=0.85 > "$W/loc-demo.log" 2>&1
  for cam in default demo; do
    for r in box ellipse grabcut cam; do
      "$BIN" refine --set refine.store="$W/records" --set refine.boxes="$W/boxes-$cam" --set refine.refiner=$r \
        --set refine.output="$W/masks-$cam-$r" --set refine.threads="$THREADS" \
        --set run.dir="$W/run-refine-$cam-$r" > "$W/refine-$cam-$r.log" 2>&1
      for truth in masks polyp-masks; do
        "$BIN" masks eval --masks "$W/masks-$cam-$r" --truth "$R/$truth" \
          --json "$W/eval-$cam-$r-$truth.json" > /dev/null 2>&1
      done
    done
  done
  t4=$(date +%s.%N)
  /usr/bin/python3 - "$W" "$t0" "$t1" "$t2" "$t3" "$t4" "$WIDTH" "${WEIGHTS:-}" > "$W/b-part.json" <<'PY'
import ast, json, os, sys
w = sys.argv[1]
t0, t1, t2, t3, t4 = map(float, sys.argv[2:7])
width, weights = int(sys.argv[7]), sys.argv[8]
manifest = lambda d: json.load(open(os.path.join(w, d, "manifest.json")))["summary"]
mil = manifest("mil")
out = {"data": ast.literal_eval(open(os.path.join(w, "prep.txt")).read().strip())["train"],
       "mil": {k: mil.get(k) for k in ("exam_auc", "image_auc", "image_ap", "selection")},
       "backbone": {"arch": "resnet18", "width": width,
                    "weights": os.path.basename(weights) if weights else "none (from scratch)"},
       "seconds": {"prepare_ingest_label": t1 - t0, "mil": t2 - t1, "localise": t3 - t2,
                   "reboxing_refine_eval": t4 - t3},
       "cam": {}}
for cam, settings in (("default", "scales 1.0/0.5/1.5, threshold 0.65"), ("demo", "scales 1.0/1.5, threshold 0.85")):
    loc = manifest(f"boxes-{cam}")
    c = {"settings": settings, "localise": {k: loc.get(k) for k in ("selection", "candidates", "accepted", "rejects", "seconds")},
         "refiners": {}}
    for r in ("box", "ellipse", "grabcut", "cam"):
        ref = manifest(f"masks-{cam}-{r}")
        e_all = json.load(open(os.path.join(w, f"eval-{cam}-{r}-masks.json")))
        e_pol = json.load(open(os.path.join(w, f"eval-{cam}-{r}-polyp-masks.json")))
        c["refiners"][r] = {
            "accepted": ref["accepted"], "rejects": ref["rejects"], "ms_per_image": ref["ms_per_image"],
            "on_polyp_crops": e_pol["images"], "on_polyp_free_crops": e_pol["predictions_without_truth"],
            "dice_polyp_crops": e_pol["dice"], "iou_polyp_crops": e_pol["iou"], "box_iou_polyp_crops": e_pol["box_iou"],
            "detection_precision": e_pol["precision"], "detection_recall": e_pol["recall"],
            "dice_all": e_all["dice"], "iou_all": e_all["iou"],
            "polyp_crops_covered": e_pol["images"] / out["data"]["positive_images"]}
    out["cam"][cam] = c
json.dump(out, sys.stdout)
PY
  save_part cam_boxes "$W/b-part.json"
fi

/usr/bin/python3 - "$RESULT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
md = ["# Refiners on Kvasir-SEG (real frames, expert masks)", ""]
a = r.get("true_boxes")
if a:
    md += [f"## (a) From the true boxes ({a['date']}, {a['git_revision']})", "",
           f"`{a['command']}`, {a['images']} frames, {a['seconds']:.0f} s. Boxes from the expert masks: "
           "`union` = the mask's bounding box, `components` = one box per 8-connected component. Dice / IoU "
           "per image as PraNet computes them (vision::segmentation_score), averaged; `accepted` by the "
           "default acceptance rules (refine.accept)." + (f" Note: {a['note']}." if a.get("note") else ""), "",
           "| refiner | boxes | Dice | IoU | accepted | Dice (accepted) | rejects | ms / image |", "|---|---|---|---|---|---|---|---|"]
    for name, modes in a["refiners"].items():
        for mode, v in modes.items():
            md.append(f"| {name} | {mode} | {v['dice']:.3f} | {v['iou']:.3f} | {v['accepted']} | {v['dice_accepted']:.3f} | "
                      f"{', '.join(f'{k} {n}' for k, n in v['rejects'].items()) or '–'} | {v['ms_per_image']:.1f} |")
    md.append("")
b = r.get("cam_boxes")
if b:
    d, m, s = b["data"], b["mil"], b["seconds"]
    bb = b.get("backbone", {"width": 24, "weights": "none (from scratch)"})
    md += [f"## (b) From the CAM boxes ({b['date']}, {b['git_revision']})", "",
           f"`{b['command']}`. Nothing but the reports' labels in the loop: {d['images']} square crops "
           f"(192 px of frames rescaled to 384 px wide) in {d['exams']} exams ({d['positive_exams']} positive); "
           f"{d['positive_images']} crops hold a whole polyp, the rest none. Backbones: ResNet-18 width "
           f"{bb['width']}, weights {bb['weights']}. MIL (128 px, 16 epochs): exam AUC {m['exam_auc']:.3f}, "
           f"image AUC {m['image_auc']:.3f}. "
           "Localise: 192 px, 16 epochs on MIL's rank selection; CAM boxes on the "
           "selected positives by EndoKED's rules, with the default CAM settings and with the demo's "
           "(the same classifier). Every refiner's ACCEPTED masks against the expert masks: on the crops "
           "with a polyp (Dice, IoU, box IoU, detection at box IoU 0.5), and `Dice all` where a mask on a "
           "polyp-free crop scores 0. `covered` = share of all polyp crops with an accepted mask.", "",
           f"Wall time: prepare + ingest + label {s['prepare_ingest_label']:.0f} s, MIL {s['mil']:.0f} s, "
           f"localise (train + box) {s['localise']:.0f} s, re-boxing + 8 refine runs + evaluation "
           f"{s['reboxing_refine_eval']:.0f} s." + (f" Note: {b['note']}." if b.get("note") else ""), ""]
    for cam, c in b["cam"].items():
        l = c["localise"]
        md += [f"### CAM settings `{cam}`: {c['settings']}", "",
               f"Selection {l['selection']}; {l['candidates']} candidates, {l['accepted']} boxes accepted, "
               f"rejects {', '.join(f'{k} {n}' for k, n in l['rejects'].items()) or '–'}.", "",
               "| refiner | accepted | on polyp / polyp-free crops | Dice (polyp crops) | IoU | box IoU | det. P / R | Dice all | covered | rejects | ms / image |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, v in c["refiners"].items():
            md.append(f"| {name} | {v['accepted']} | {v['on_polyp_crops']} / {v['on_polyp_free_crops']} | "
                      f"{v['dice_polyp_crops']:.3f} | {v['iou_polyp_crops']:.3f} | {v['box_iou_polyp_crops']:.3f} | "
                      f"{v['detection_precision']:.2f} / {v['detection_recall']:.2f} | {v['dice_all']:.3f} | "
                      f"{v['polyp_crops_covered']:.2f} | {', '.join(f'{k} {n}' for k, n in v['rejects'].items()) or '–'} | "
                      f"{v['ms_per_image']:.1f} |")
        md.append("")
else:
    md += ["Not yet measured: (b) from the CAM boxes.", ""]
open("benchmarks/results/refine_real.md", "w").write("\n".join(md))
print("\n".join(md))
PY
exit
}
