#!/usr/bin/env bash
# Distill on real frames (Kvasir-SEG's 900 frames with expert masks): the whole EndoKED chain with
# nothing but report labels in the loop, judged on frames it never saw.
#   - square crops (benchmarks/mil_real_prep.py --whole: a positive crop holds a whole polyp, a
#     negative none) in exams with reports; frames split by a hash of their id: 4/5 TRAINING part,
#     1/5 HELD-ASIDE part (no frame on both sides);
#   - training part: ingest → label (rules) → mil → localise (default CAM settings) → refine
#     ($REFINER) → distill ($ARCH, EndoKED's self-training rounds) on the pseudo masks. No expert
#     mask is used for training or model selection (distill gets the expert masks as `truth`
#     only to report the per-round Dice of its training masks; the model is the last epoch's);
#   - the ceiling: the same distill on the EXPERT masks of the training part (masks import), one
#     round with as many epochs as the pseudo run's rounds together;
#   - both models: endoked segment on the held-aside crops, masks eval against their expert masks
#     (crops with a polyp: Dice, IoU, weighted F, S, mean E, MAE, AP50, detection P / R) and the
#     share of polyp-free held-aside crops where the model marks any pixel;
#   - the pseudo masks' own Dice against the expert masks (training part).
#   → benchmarks/results/distill_real.{json,md} (one entry per variant)
# usage: benchmarks/distill_real.sh KVASIR_DIR   (e.g. ../shared/data/kvasir-seg)
#   THREADS (default nproc), REFINER (box | ellipse | grabcut | cam | sam; default box: the best
#   Dice from the CAM boxes in benchmarks/results/refine_real.md), ARCH (pranet | unet; pranet),
#   SIZE (distill input px; 128), EPOCHS (first round; 12), ROUNDS (2), ROUND_EPOCHS (6),
#   REREFINE (a refiner: each round's accepted predictions refined again; default none),
#   STAGE_EPOCHS (mil and localise; 16), KEEP=DIR (work there and keep it), NOTE (kept with the result).
#   Each variant (REFINER, REREFINE, ARCH, SIZE) is kept under its own name in the JSON; rerunning one
#   replaces only it.
set -euo pipefail
{ # read whole before it runs: editing the file meanwhile cannot change a running benchmark
cd "$(dirname "$0")/.."
DATA=${1:?usage: benchmarks/distill_real.sh KVASIR_DIR}
THREADS=${THREADS:-$(nproc)}
REFINER=${REFINER:-box}
ARCH=${ARCH:-pranet}
SIZE=${SIZE:-128}
EPOCHS=${EPOCHS:-12}
ROUNDS=${ROUNDS:-2}
ROUND_EPOCHS=${ROUND_EPOCHS:-6}
REREFINE=${REREFINE:-}
STAGE_EPOCHS=${STAGE_EPOCHS:-16}
BIN=build/apps/endoked/endoked
REVISION=$(git describe --always --dirty)
W=${KEEP:-$(mktemp -d)}
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
mkdir -p "$W"
CMD="$0 $* (THREADS=$THREADS REFINER=$REFINER ARCH=$ARCH SIZE=$SIZE EPOCHS=$EPOCHS ROUNDS=$ROUNDS ROUND_EPOCHS=$ROUND_EPOCHS REREFINE=$REREFINE STAGE_EPOCHS=$STAGE_EPOCHS)"
stamp() { date +%s.%N; }
step() { echo "[$(date +%H:%M:%S)] $*"; }
# logged LOG COMMAND…: the command's output into $W/LOG; on failure its tail, and the run stops.
logged() { local log=$W/$1; shift; "$@" > "$log" 2>&1 || { tail -20 "$log"; echo "failed: $*" >&2; exit 1; }; }

t0=$(stamp)
step "prepare crops"
/usr/bin/python3 benchmarks/mil_real_prep.py "$DATA" "$W/raw" --whole 6 --crop 192 --negatives 5 \
  --test-every 5 --masks > "$W/prep.txt"
R=$W/raw/train
H=$W/raw/test
logged ingest.log "$BIN" ingest --set ingest.images_dir="$R/images" --set ingest.reports="$R/reports.csv" \
  --set ingest.output="$W/records" --set run.dir="$W/run-ingest"
logged label.log "$BIN" label --set label.store="$W/records" --set label.output="$W/labels" \
  --set run.dir="$W/run-label"
logged import.log "$BIN" masks import "$R/masks" --store "$W/records" --output "$W/expert"
t1=$(stamp)
step "mil"
logged mil.log "$BIN" mil --set mil.store="$W/records" --set mil.labels="$W/labels" --set mil.truth="$R/truth.csv" \
  --set mil.output="$W/mil" --set run.dir="$W/run-mil" --set mil.model.width=24 --set mil.image_size=128 \
  --set mil.trainer.epochs="$STAGE_EPOCHS" --set mil.threads="$THREADS"
t2=$(stamp)
step "localise"
logged localise.log "$BIN" localise --set localise.store="$W/records" --set localise.scores="$W/mil" \
  --set localise.threads="$THREADS" --set localise.image_size=192 --set localise.model.width=24 \
  --set localise.trainer.epochs="$STAGE_EPOCHS" --set localise.output="$W/boxes" --set run.dir="$W/run-localise"
step "refine ($REFINER)"
logged refine.log "$BIN" refine --set refine.store="$W/records" --set refine.boxes="$W/boxes" --set refine.refiner="$REFINER" \
  --set refine.output="$W/pseudo" --set refine.threads="$THREADS" --set run.dir="$W/run-refine"
logged eval-pseudo.log "$BIN" masks eval --masks "$W/pseudo" --truth "$R/polyp-masks" --json "$W/eval-pseudo-masks.json"
t3=$(stamp)
common=(--set distill.store="$W/records" --set distill.labels="$W/labels" --set distill.threads="$THREADS"
        --set distill.image_size="$SIZE" --set distill.model.arch="$ARCH")
step "distill on the pseudo masks"
logged distill.log "$BIN" distill "${common[@]}" --set distill.masks="$W/pseudo" --set distill.truth="$W/expert" \
  --set distill.output="$W/distilled" --set run.dir="$W/run-distill" --set distill.trainer.epochs="$EPOCHS" \
  --set distill.rounds="$ROUNDS" --set distill.round_epochs="$ROUND_EPOCHS" --set distill.refine.refiner="$REREFINE"
t4=$(stamp)
step "distill on the expert masks (the ceiling)"
logged ceiling.log "$BIN" distill "${common[@]}" --set distill.masks="$W/expert" --set distill.output="$W/ceiling" \
  --set run.dir="$W/run-ceiling" --set distill.rounds=1 \
  --set distill.trainer.epochs=$((EPOCHS + (ROUNDS - 1) * ROUND_EPOCHS))
t5=$(stamp)
step "segment + evaluate the held-aside crops"
for m in distilled ceiling; do
  logged segment-$m.log "$BIN" segment --checkpoint "$W/$m" --images "$H/images" --output "$W/seg-$m"
  logged eval-$m.log "$BIN" masks eval --masks "$W/seg-$m/masks" --truth "$H/polyp-masks" --json "$W/eval-$m.json"
done
t6=$(stamp)
/usr/bin/python3 - "$W" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" > "$W/result.json" <<'PY'
import ast, csv, json, os, sys
import numpy as np
from PIL import Image
w = sys.argv[1]
t = list(map(float, sys.argv[2:9]))
manifest = lambda d: json.load(open(os.path.join(w, d, "manifest.json")))["summary"]
prep = ast.literal_eval(open(os.path.join(w, "prep.txt")).read().strip())
held = os.path.join(w, "raw", "test")
negatives = [r["image"] for r in csv.DictReader(open(os.path.join(held, "truth.csv"))) if r["has_polyp"] == "0"]
def held_out(m):
    e = json.load(open(os.path.join(w, f"eval-{m}.json")))
    marked = 0
    for image in negatives:
        png = os.path.join(w, f"seg-{m}", "masks", os.path.splitext(image)[0] + ".png")
        marked += bool((np.asarray(Image.open(png)) > 127).any())
    keys = ("images", "dice", "iou", "weighted_f", "s_measure", "mean_e_measure", "mae", "ap50", "precision", "recall")
    out = {k: e[k] for k in keys}
    out["polyp_free_crops"] = len(negatives)
    out["polyp_free_crops_marked"] = marked / max(1, len(negatives))
    return out
mil, loc, ref = manifest("mil"), manifest("boxes"), manifest("pseudo")
dis, cei = manifest("distilled"), manifest("ceiling")
pm = json.load(open(os.path.join(w, "eval-pseudo-masks.json")))
n_rounds = dis["round"]  # each round's summary is its masks sidecar's
rounds = [{k: r.get(k) for k in ("round", "trained_on", "negatives", "epochs", "seconds", "accepted", "truth")}
          for r in [manifest(f"distilled-round{k}") for k in range(1, n_rounds)] + [dis]]
out = {"data": prep,
       "mil": {k: mil.get(k) for k in ("exam_auc", "image_auc", "image_ap")},
       "localise": {k: loc.get(k) for k in ("candidates", "accepted", "rejects")},
       "pseudo_masks": {"refiner": ref["refiner"], "accepted": ref["accepted"], "rejects": ref["rejects"],
                        "on_polyp_crops": pm["images"], "on_polyp_free_crops": pm["predictions_without_truth"],
                        "dice_polyp_crops": pm["dice"], "iou_polyp_crops": pm["iou"]},
       "distilled": {"rounds": rounds, "heldout": held_out("distilled")},
       "ceiling": {"trained_on": cei["trained_on"], "negatives": cei["negatives"],
                   "epochs": cei["epochs"], "heldout": held_out("ceiling")},
       "seconds": {"prepare_ingest_label_import": t[1] - t[0], "mil": t[2] - t[1],
                   "localise_refine": t[3] - t[2], "distill_pseudo": t[4] - t[3],
                   "distill_expert": t[5] - t[4], "segment_eval": t[6] - t[5], "total": t[6] - t[0]}}
json.dump(out, sys.stdout)
PY
/usr/bin/python3 - "$W/result.json" "$CMD" "$REVISION" "$REFINER" "$ARCH" "$SIZE" "$REREFINE" "${NOTE:-}" <<'PY'
import datetime, json, os, sys
src, cmd, rev, refiner, arch, size, rerefine, note = sys.argv[1:9]
r = json.load(open(src))
r.update({"command": cmd, "git_revision": rev, "refiner": refiner, "rerefine": rerefine, "arch": arch,
          "image_size": int(size), "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")})
if note:
    r["note"] = note
label = f"{refiner}{' + re-refine ' + rerefine if rerefine else ''}, {arch} {size} px"
dst = "benchmarks/results/distill_real.json"
old = json.load(open(dst)) if os.path.exists(dst) else {}
variants = old.get("variants", {})
variants[label] = r
json.dump({"variants": variants}, open(dst, "w"), indent=2)

md = ["# Distill on Kvasir-SEG (real frames, expert masks held aside)", "",
      "`benchmarks/distill_real.sh KVASIR_DIR`: nothing but the reports' labels in the loop. Square crops "
      "(192 px of frames rescaled to 384 px wide; a positive crop holds a whole polyp, a negative none) in "
      "exams with short reports; frames split by a hash of their id into a training part and a held-aside "
      "part (no frame on both sides). Training part: ingest → label (rules) → mil → localise → refine → "
      "distill (self-training rounds) on the pseudo masks; no expert mask for training or model selection. "
      "The ceiling: the same model trained on the expert masks of every polyp crop of the training part. "
      "Both models segment the held-aside crops (endoked segment), scored against their expert masks "
      "(endoked masks eval: PraNet's metrics on the crops with a polyp; `marked` = share of the polyp-free "
      "held-aside crops where the model marks any pixel). Each variant (pseudo-mask refiner, optional "
      "re-refinement in the rounds, network, input size) is one run of the script; its result stays until "
      "that variant is rerun.", "",
      "| variant | pseudo masks' Dice (training polyp crops) | distilled Dice (held aside) | ceiling Dice | distilled / ceiling | marked (distilled / ceiling) | wall time |",
      "|---|---|---|---|---|---|---|"]
for name, v in variants.items():
    di, ce = v["distilled"]["heldout"], v["ceiling"]["heldout"]
    md.append(f"| {name} | {v['pseudo_masks']['dice_polyp_crops']:.3f} | {di['dice']:.3f} | {ce['dice']:.3f} | "
              f"{di['dice'] / ce['dice']:.2f} | {di['polyp_free_crops_marked']:.2f} / {ce['polyp_free_crops_marked']:.2f} | "
              f"{v['seconds']['total'] / 60:.0f} min |")
md.append("")
for name, v in variants.items():
    d, tr, s = v["data"]["train"], v["data"]["test"], v["seconds"]
    p, di, ce = v["pseudo_masks"], v["distilled"]["heldout"], v["ceiling"]["heldout"]
    md += [f"## {name} ({v['date']}, {v['git_revision']})", "",
           f"`{v['command']}`. Training part: {d['images']} crops in {d['exams']} exams "
           f"({d['positive_exams']} positive), {d['positive_images']} with a polyp; held-aside part: "
           f"{tr['images']} crops, {tr['positive_images']} with a polyp. MIL (ResNet-18 width 24, 128 px, from "
           f"scratch): exam AUC {v['mil']['exam_auc']:.3f}, image AUC {v['mil']['image_auc']:.3f}; localise "
           f"(192 px, default CAM settings): {v['localise']['accepted']} boxes; refine `{v['refiner']}`: "
           f"{p['accepted']} accepted pseudo masks ({p['on_polyp_crops']} on polyp crops, {p['on_polyp_free_crops']} "
           f"on polyp-free crops), Dice {p['dice_polyp_crops']:.3f} / IoU {p['iou_polyp_crops']:.3f} against the "
           f"expert masks on the polyp crops they cover. Distill: `{v['arch']}` at {v['image_size']} px on the "
           "accepted masks plus as many crops of report-negative exams with empty masks"
           + (f", each round's accepted predictions refined again with `{v['rerefine']}`" if v.get("rerefine") else "")
           + "." + (f" Note: {v['note']}." if v.get("note") else ""), "",
           "| model | polyp crops | Dice | IoU | weighted F | S | mean E | MAE | AP50 | det. P / R | polyp-free crops marked |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, x in (("distilled from the pseudo masks", di), ("ceiling: trained on the expert masks", ce)):
        md.append(f"| {m} | {x['images']} | {x['dice']:.3f} | {x['iou']:.3f} | {x['weighted_f']:.3f} | "
                  f"{x['s_measure']:.3f} | {x['mean_e_measure']:.3f} | {x['mae']:.3f} | {x['ap50']:.3f} | "
                  f"{x['precision']:.2f} / {x['recall']:.2f} | {x['polyp_free_crops_marked']:.2f} of {x['polyp_free_crops']} |")
    md += ["", "Rounds, on the training crops the pseudo masks refined (a mask on a polyp-free crop scores 0): "
           "the Dice of the masks the round learnt and of the round's output masks on the same crops (the model's, "
           "re-refined where the variant re-refines).", "",
           "| round | trained on (+ negatives) | epochs | seconds | training masks' Dice | output masks' Dice | accepted for the next |",
           "|---|---|---|---|---|---|---|"]
    for x in v["distilled"]["rounds"]:
        tt = x.get("truth") or {}
        md.append(f"| {x['round']} | {x['trained_on']} (+{x['negatives']}) | {x['epochs']} | {x['seconds']:.0f} | "
                  f"{tt.get('train_masks_dice', float('nan')):.3f} | {tt.get('dice', float('nan')):.3f} | {x['accepted']} |")
    md += ["", f"Wall time (2 cores): prepare + ingest + label + import {s['prepare_ingest_label_import']:.0f} s, "
           f"MIL {s['mil']:.0f} s, localise + refine {s['localise_refine']:.0f} s, distill on the pseudo masks "
           f"{s['distill_pseudo']:.0f} s, on the expert masks {s['distill_expert']:.0f} s, segment + eval "
           f"{s['segment_eval']:.0f} s; total {s['total']:.0f} s.", ""]
open("benchmarks/results/distill_real.md", "w").write("\n".join(md))
print("\n".join(md))
PY
exit
}
