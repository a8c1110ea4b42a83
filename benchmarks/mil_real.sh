#!/usr/bin/env bash
# MIL on real colonoscopy frames (Kvasir-SEG, 900 frames with expert masks), trained from scratch:
# bags of same-size crops (benchmarks/mil_real_prep.py: positive crops hold >= 50 % of a polyp's
# mask, negative crops touch none; frames split train / test by id) → ingest → label (rules) →
# mil on the train exams → mil score on the test exams. Records exam AUC and image AUC / AP on
# the test frames, the training-set numbers, and wall times.
#   → benchmarks/results/mil_real.{json,md}
# usage: benchmarks/mil_real.sh KVASIR_DIR [WIDTH] [EPOCHS]   (e.g. ../shared/data/kvasir-seg)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: benchmarks/mil_real.sh KVASIR_DIR [WIDTH] [EPOCHS]}
WIDTH=${2:-24}
EPOCHS=${3:-16}
BIN=build/apps/endoked/endoked
REVISION=$(git describe --always --dirty)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
t0=$(date +%s.%N)
/usr/bin/python3 benchmarks/mil_real_prep.py "$DATA" "$W/raw" > "$W/prep.txt"
for part in train test; do
  "$BIN" ingest --set ingest.images_dir="$W/raw/$part/images" --set ingest.reports="$W/raw/$part/reports.csv" \
    --set ingest.output="$W/$part/records" --set run.dir="$W/run-ingest-$part" > "$W/ingest-$part.log" 2>&1
  "$BIN" label --set label.store="$W/$part/records" --set label.output="$W/$part/labels" \
    --set run.dir="$W/run-label-$part" > "$W/label-$part.log" 2>&1
done
t1=$(date +%s.%N)
"$BIN" mil --set mil.store="$W/train/records" --set mil.labels="$W/train/labels" \
  --set mil.truth="$W/raw/train/truth.csv" --set mil.output="$W/train/mil" --set run.dir="$W/run-mil" \
  --set mil.model.width="$WIDTH" --set mil.image_size=128 --set mil.trainer.epochs="$EPOCHS" \
  --set mil.threads="$(nproc)" 2>&1 | tee "$W/mil.log" | grep -E "eval:|scored|error" || true
t2=$(date +%s.%N)
"$BIN" mil score --store "$W/test/records" --checkpoint "$W/train/mil/model.pt" --labels "$W/test/labels" \
  --truth "$W/raw/test/truth.csv" --output "$W/test/scores" --set run.dir="$W/run-score" \
  --set mil_score.threads="$(nproc)" > "$W/score.log" 2>&1
t3=$(date +%s.%N)
cp "$W/run-mil/metrics.jsonl" "$W/metrics.jsonl"
/usr/bin/python3 - "$W" "$REVISION" "$0 $*" "$t0" "$t1" "$t2" "$t3" "$WIDTH" "$EPOCHS" <<'PY'
import ast, json, os, sys, datetime, platform
w, rev, cmd = sys.argv[1:4]
t0, t1, t2, t3 = map(float, sys.argv[4:8])
width, epochs = int(sys.argv[8]), int(sys.argv[9])
data = ast.literal_eval(open(os.path.join(w, "prep.txt")).read().strip())
train = json.load(open(os.path.join(w, "train/mil/manifest.json")))["summary"]
test = json.load(open(os.path.join(w, "test/scores/manifest.json")))["summary"]
keys = ["exam_auc", "exam_auc_attention", "exam_auc_dsmil", "image_auc", "image_ap"]
out = {"command": cmd, "git_revision": rev,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
       "machine": f"{os.cpu_count()} cores, {platform.machine()}",
       "model": {"arch": "resnet18", "width": width, "image_size": 128, "epochs": epochs,
                 "weights": "none (from scratch)"},
       "data": data,
       "test": {k: test.get(k) for k in keys + ["images", "exams", "images_per_s"]},
       "train": {k: train.get(k) for k in keys + ["selection", "steps"]},
       "seconds": {"prepare_ingest_label": t1 - t0, "mil_train": t2 - t1, "mil_score_test": t3 - t2}}
json.dump(out, open("benchmarks/results/mil_real.json", "w"), indent=2)
f = lambda v: "–" if v is None else f"{v:.3f}"
md = [f"# MIL on real frames: Kvasir-SEG crops ({out['date']}, {rev})", "",
      f"`{cmd}` on {out['machine']}. ResNet-18 of width {width} at 128 px, {epochs} epochs "
      "(teacher and student alternating), trained from scratch — no pretrained weights can be had "
      "here. Bags: square crops of one size from frames rescaled to one width; a positive crop holds "
      "≥ 50 % of a polyp's mask, a negative one touches no mask; a positive exam has 1–3 positive "
      "crops among 2–5 negatives, a negative exam 3–7 negatives; the reports say which (labelled "
      "by the rules labeller). Frames are split train / test by id: no frame on both sides.", "",
      "| split | exams (positive) | images (positive) | exam AUC | exam AUC attention | exam AUC DSMIL | image AUC | image AP |",
      "|---|---|---|---|---|---|---|---|"]
for name, s in (("train", out["train"]), ("test", out["test"])):
    d = data[name]
    md.append(f"| {name} | {d['exams']} ({d['positive_exams']}) | {d['images']} ({d['positive_images']}) | "
              + " | ".join(f(s.get(k)) for k in keys) + " |")
sec = out["seconds"]
md += ["", f"Wall time: prepare + ingest + label {sec['prepare_ingest_label']:.0f} s, MIL training "
       f"{sec['mil_train']:.0f} s, scoring the test store {sec['mil_score_test']:.0f} s "
       f"({f(out['test'].get('images_per_s'))} images/s).",
       "", "Exam AUC: the student's highest image score per exam (and each teacher's bag probability) "
       "against the report labels; image AUC / AP: the student's score against the masks' truth."]
open("benchmarks/results/mil_real.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
