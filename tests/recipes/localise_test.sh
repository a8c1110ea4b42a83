#!/usr/bin/env bash
# Localise → refine → masks export / eval as a user runs them, on the demo's synthetic corpus (120 exams,
# seed 7) after label and mil (width 16, 16 epochs, as the demo):
#   - localise: the CAM classifier trains on the MIL selection; its accepted boxes hit the true
#     polyps (IoU ≥ 0.5) at a stated rate (HIT, measured in the README's table); every candidate is
#     accepted or has a reject reason; the rejects table holds exactly the rejected candidates;
#     with strict box rules every reason appears; 2 ranks (batch 8 each) give the boxes of 1 rank
#     (batch 16): the same status for ≥ 95 % of the images;
#   - refine: the default refiner's Dice against the true masks beats the filled boxes; 2 ranks
#     write the same masks as 1 rank (byte for byte); every acceptance rule can reject;
#   - the sam refiner (a tiny random checkpoint) on 2 ranks fills its embedding cache with every
#     image (both ranks' parts committed); a second 2-rank run and a 1-rank run encode nothing and
#     write the same masks byte for byte;
#   - masks export: COCO JSON whose RLE /usr/bin/python3 decodes (a few lines of numpy) back into
#     the sidecar's masks; PNG masks; an nnU-Net raw dataset with a matching dataset.json;
#   - masks eval: the sidecar and the exported PNG folder score the same against the truth, and
#     agree with refine's own Dice;
#   - masks import: the exported PNG folder imported back scores as the sidecar did; bad masks are
#     failed and named, unmatched files counted, an existing output refused and left unchanged;
#   - distill on the refined masks: distill_test.sh (with this folder).
set -euo pipefail
BIN=$1
MPIRUN=$2
TINY_SAM=$3  # writes a tiny random SAM checkpoint
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mpi() { local n=$1; shift; timeout 600 "$MPIRUN" -np "$n" --oversubscribe --bind-to none "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
HIT=${HIT:-0.25}

"$BIN" synth --set synth.format=store --set synth.exams=120 --set synth.seed=7 \
  --set synth.output="$T/records" --set synth.truth="$T/truth" --set synth.exams_per_shard=20 \
  --set run.dir="$T/run-synth" >/dev/null 2>&1 || fail "synth"
"$BIN" label --set label.store="$T/records" --set label.output="$T/labels" \
  --set run.dir="$T/run-label" >/dev/null 2>&1 || fail "label"
"$BIN" mil --set mil.store="$T/records" --set mil.labels="$T/labels" --set mil.model.width=16 \
  --set mil.image_size=128 --set mil.trainer.epochs=16 --set mil.output="$T/mil" \
  --set run.dir="$T/run-mil" > "$T/mil.log" 2>&1 || { tail -20 "$T/mil.log"; fail "mil"; }

loc=(--set localise.store="$T/records" --set localise.scores="$T/mil" --set localise.truth="$T/truth"
  --set localise.trainer.epochs=8 --set localise.threads=1 --set localise.box.threshold=0.85
  --set localise.cam.scales=[1.0,1.5])
"$BIN" localise "${loc[@]}" --set localise.trainer.checkpoint.dir="$T/ckpt" --set localise.output="$T/boxes1" \
  --set run.dir="$T/run-l1" > "$T/l1.log" 2>&1 || { tail -20 "$T/l1.log"; fail "localise"; }
mpi 2 "$BIN" localise "${loc[@]}" --set localise.batch_size=8 --set localise.output="$T/boxes2" \
  --set run.dir="$T/run-l2" > "$T/l2.log" 2>&1 || { tail -20 "$T/l2.log"; fail "2-rank localise"; }
# Every reject reason, with the trained model (the same checkpoint: only the boxes are redone).
strict() {  # name, box rules...
  local name=$1; shift
  local rules=()
  for r in "$@"; do rules+=(--set "localise.box.$r"); done
  "$BIN" localise "${loc[@]}" --set localise.trainer.checkpoint.dir="$T/ckpt" "${rules[@]}" \
    --set localise.output="$T/$name" --set run.dir="$T/run-$name" > "$T/$name.log" 2>&1 || { tail -20 "$T/$name.log"; fail "localise $name"; }
  grep -q "resumed from" "$T/$name.log" || fail "localise $name retrained instead of resuming"
}
strict strict-area threshold=0.3 max_area=0.03
strict strict-none threshold=1.01
strict strict-small reject_border=false min_area=0.3
strict strict-components reject_border=false min_area=0 max_area=1 max_components=2 threshold=0.5

ref=(--set refine.store="$T/records" --set refine.truth="$T/truth" --set refine.threads=1)
"$BIN" refine "${ref[@]}" --set refine.boxes="$T/boxes1" --set refine.output="$T/masks1" --set run.dir="$T/run-r1" > "$T/r1.log" 2>&1 || { tail -20 "$T/r1.log"; fail "refine"; }
mpi 2 "$BIN" refine "${ref[@]}" --set refine.boxes="$T/boxes1" --set refine.output="$T/masks2" --set run.dir="$T/run-r2" > "$T/r2.log" 2>&1 || { tail -20 "$T/r2.log"; fail "2-rank refine"; }
"$BIN" refine "${ref[@]}" --set refine.boxes="$T/boxes1" --set refine.accept.min_box_share=0.9 \
  --set refine.accept.max_area=0.04 --set refine.accept.min_area=0.02 --set refine.output="$T/masks-strict" --set run.dir="$T/run-rs" > "$T/rs.log" 2>&1 || { tail -20 "$T/rs.log"; fail "strict refine"; }
sam=(--set refine.boxes="$T/boxes1" --set refine.refiner=sam --set refine.options.sam.checkpoint="$T/sam.pt"
  --set refine.options.sam.min_predicted_iou=-1 --set refine.options.sam.min_stability=0
  --set refine.options.sam.min_prompt_box_iou=0 --set refine.cache="$T/sam-cache" --set refine.batch=2)
"$TINY_SAM" "$T/sam.pt" || fail "tiny SAM checkpoint"
mpi 2 "$BIN" refine "${ref[@]}" "${sam[@]}" --set refine.output="$T/masks-sam1" --set run.dir="$T/run-s1" > "$T/s1.log" 2>&1 || { tail -20 "$T/s1.log"; fail "2-rank sam refine"; }
mpi 2 "$BIN" refine "${ref[@]}" "${sam[@]}" --set refine.output="$T/masks-sam2" --set run.dir="$T/run-s2" > "$T/s2.log" 2>&1 || { tail -20 "$T/s2.log"; fail "2-rank sam refine from the cache"; }
"$BIN" refine "${ref[@]}" "${sam[@]}" --set refine.output="$T/masks-sam3" --set run.dir="$T/run-s3" > "$T/s3.log" 2>&1 || { tail -20 "$T/s3.log"; fail "1-rank sam refine from the cache"; }
[ -s "$T/run-r1/montage-masks.png" ] || fail "no montage-masks.png in the refine run directory"
[ -s "$T/run-l1/montage-boxes.png" ] || fail "no montage-boxes.png in the localise run directory"

"$BIN" masks export "$T/masks1" --coco "$T/coco.json" --png "$T/png" --nnunet "$T/nnunet" > "$T/export.log" 2>&1 || { cat "$T/export.log"; fail "masks export"; }
"$BIN" masks export "$T/masks1" --png "$T/png" > "$T/export2.log" 2>&1 && fail "export into a folder with files in it"
grep -q "not an empty folder" "$T/export2.log" || { cat "$T/export2.log"; fail "the refusal does not say why"; }
"$BIN" masks export "$T/masks1" --coco "$T/coco.json" > "$T/export3.log" 2>&1 && fail "export over an existing COCO file"
grep -q "never replaces a file" "$T/export3.log" || { cat "$T/export3.log"; fail "the COCO refusal does not say why"; }
"$BIN" masks eval --masks "$T/masks1" --truth "$T/truth" --json "$T/eval-sidecar.json" > /dev/null 2>&1 || fail "masks eval (sidecar)"
"$BIN" masks eval --masks "$T/png/masks" --truth "$T/truth" --store "$T/records" --json "$T/eval-png.json" > /dev/null 2>&1 || fail "masks eval (folder)"
# One undecodable prediction is skipped, counted and named; the others are still scored.
cp -r "$T/png/masks" "$T/png-bad"
BAD=$(ls "$T/png-bad" | head -1)
printf 'not a png' > "$T/png-bad/$BAD"
"$BIN" masks eval --masks "$T/png-bad" --truth "$T/truth" --store "$T/records" --json "$T/eval-bad.json" > "$T/eval-bad.log" 2>&1 || { cat "$T/eval-bad.log"; fail "masks eval stops at an undecodable prediction"; }
grep -q "${BAD%.png}" "$T/eval-bad.log" || { cat "$T/eval-bad.log"; fail "the skipped prediction is not named"; }
# masks import: the exported PNG folder back into a masks sidecar of the store; a mask that does not
# decode or has the wrong size is failed and named, a file no image matches is counted, an existing
# output is refused and left as it was.
"$BIN" masks import "$T/png/masks" --store "$T/records" --output "$T/imported" > "$T/import.log" 2>&1 || { cat "$T/import.log"; fail "masks import"; }
"$BIN" masks eval --masks "$T/imported" --truth "$T/truth" --json "$T/eval-imported.json" > /dev/null 2>&1 || fail "masks eval (imported)"
SUM=$(sha256sum "$T/imported/manifest.json")
"$BIN" masks import "$T/png/masks" --store "$T/records" --output "$T/imported" > "$T/import2.log" 2>&1 && fail "import over an existing sidecar"
grep -q "never replaces anything" "$T/import2.log" || { cat "$T/import2.log"; fail "the import refusal does not say why"; }
[ "$SUM" = "$(sha256sum "$T/imported/manifest.json")" ] || fail "a refused import changed the existing sidecar"
cp -r "$T/png-bad" "$T/imp-bad"
SMALL=$(ls "$T/imp-bad" | sed -n 2p)
/usr/bin/python3 -c "from PIL import Image; Image.new('L', (7, 5)).save('$T/imp-bad/$SMALL')"
cp "$T/imp-bad/$SMALL" "$T/imp-bad/NOEXAM_000.png"
"$BIN" masks import "$T/imp-bad" --store "$T/records" --output "$T/imported-bad" > "$T/import3.log" 2>&1 || { cat "$T/import3.log"; fail "masks import stops at a bad mask"; }
for c in "${BAD%.png}" "${SMALL%.png}"; do grep -q "$c" "$T/import3.log" || { cat "$T/import3.log"; fail "the failed mask $c is not named"; }; done

/usr/bin/python3 - "$T" "$HIT" <<'PY' || fail "checks (above)"
import glob, io, json, os, sys
import h5py, numpy as np
from PIL import Image
t, hit = sys.argv[1], float(sys.argv[2])
def summary(d): return json.load(open(os.path.join(t, d, "manifest.json")))["summary"]
def rows(d, table, cols):
    out = {}
    for f in sorted(glob.glob(os.path.join(t, d, "shard-*.h5"))):
        h = h5py.File(f, "r")
        ids, first, n = h["exams/id"][:], h["exams/first_image"][:], h["exams/image_count"][:]
        for e in range(len(ids)):
            for k in range(n[e]):
                r = first[e] + k
                out[(ids[e].decode(), k)] = {c: blob(h, table, c, r) if c in ("mask", "cam") else h[f"{table}/{c}"][r] for c in cols}
    return out
def blob(h, table, c, r):
    o, l = h[f"{table}/{c}_offset"][r], h[f"{table}/{c}_length"][r]
    return h[f"{table}/{c}"][o:o + l].tobytes()
def check(ok, what):
    if not ok: print("FAIL:", what); sys.exit(1)

s1, s2 = summary("boxes1"), summary("boxes2")
reasons = set()
for d in ("strict-area", "strict-none", "strict-small", "strict-components"): reasons |= set(summary(d)["rejects"])
print("localise:", json.dumps({k: s1[k] for k in ("candidates", "accepted", "rejects", "truth")}))
check(s1["candidates"] >= 40, f"only {s1['candidates']} candidates")
check(s1["truth"]["hit_rate"] >= hit, f"box hit rate {s1['truth']['hit_rate']:.3f} < {hit}")
check(s1["accepted"] + sum(s1["rejects"].values()) == s1["candidates"], "candidates = accepted + rejects")
check(reasons == {"no_foreground", "border", "too_small", "too_large", "components"}, f"strict rules rejected only {reasons}")
b1, b2 = rows("boxes1", "images", ["status", "boxes"]), rows("boxes2", "images", ["status", "boxes"])
same = sum(b1[k]["status"] == b2[k]["status"] for k in b1) / len(b1)
print(f"localise 1 vs 2 ranks: same status for {same:.3f} of {len(b1)} images")
check(same >= 0.95, "2 ranks differ from 1 rank")
rejected = sum(v["status"] not in (b"accepted", b"not_candidate") for v in b1.values())
n_rejects = sum(h5py.File(f, "r")["rejects/reason"].shape[0] for f in glob.glob(os.path.join(t, "boxes1", "shard-*.h5")))
check(rejected == n_rejects, f"rejects table has {n_rejects} rows, {rejected} rejected images")

r1, rs = summary("masks1"), summary("masks-strict")
print("refine:", json.dumps({k: r1[k] for k in ("refiner", "refined", "accepted", "rejects", "truth")}))
check(r1["truth"]["dice"] > r1["truth"]["box_dice"], "the default refiner does not beat the filled boxes")
check(set(rs["rejects"]) >= {"box_share", "too_large", "too_small"}, f"strict acceptance rejected only {rs['rejects']}")
m1, m2 = rows("masks1", "images", ["status", "mask"]), rows("masks2", "images", ["status", "mask"])
check(m1 == m2, "2-rank refine differs from 1 rank")
s1f, s2f, s3f = (summary(d) for d in ("masks-sam1", "masks-sam2", "masks-sam3"))
print("sam:", json.dumps({k: [s[k] for s in (s1f, s2f, s3f)] for k in ("refined", "features")}))
n_sam = s1f["refined"]
check(n_sam == r1["refined"] > 0, "the sam refiner did not refine every image with a box")
check(s1f["features"]["encoded"] == n_sam and s1f["features"]["cached"] == 0, "first sam run: not every image encoded once")
check(s1f["features"]["cache_rows"] == n_sam, "the cache does not hold every image (a rank's parts missing?)")
for s in (s2f, s3f):
    check(s["features"]["encoded"] == 0 and s["features"]["cached"] == n_sam, "a run over cached images ran the encoder")
ms = [rows(d, "images", ["status", "mask", "scores"]) for d in ("masks-sam1", "masks-sam2", "masks-sam3")]
check(ms[0] == ms[1] == ms[2], "sam masks from the cache differ from the first run's")

# COCO RLE decoded with numpy alone (pycocotools' string format), against the sidecar's masks.
def decode_counts(s):
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48; x |= (c & 0x1f) << (5 * k); more = bool(c & 0x20); p += 1; k += 1
            if not more and (c & 0x10): x |= -1 << (5 * k)
        if len(counts) > 2: x += counts[-2]
        counts.append(x)
    return counts
def decode(seg):
    h, w = seg["size"]; flat = np.zeros(h * w, np.uint8); at, v = 0, 0
    for c in decode_counts(seg["counts"]):
        flat[at:at + c] = v; at += c; v = 1 - v
    return flat.reshape((w, h)).T  # column-major
coco = json.load(open(os.path.join(t, "coco.json")))
accepted = {k: v for k, v in m1.items() if v["status"] == b"accepted"}
check(len(coco["annotations"]) == len(accepted) == len(coco["images"]), "COCO counts")
by_file = {im["id"]: im["file_name"] for im in coco["images"]}
for a in coco["annotations"]:
    exam, name = by_file[a["image_id"]].split("/")
    ours = np.array(Image.open(io.BytesIO(accepted[(exam, int(name.split(".")[0]))]["mask"]))) > 0
    got = decode(a["segmentation"])
    check(got.shape == ours.shape and (got == ours).all(), f"RLE of {by_file[a['image_id']]}")
    check(a["area"] == int(ours.sum()), "COCO area")
    x, y, w, h = a["bbox"]; ys, xs = np.nonzero(ours)
    check([x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], "COCO bbox")
pngs = sorted(os.listdir(os.path.join(t, "png", "masks")))
check(len(pngs) == len(accepted) and len(os.listdir(os.path.join(t, "png", "previews"))) == len(pngs), "PNG export")
one = np.array(Image.open(os.path.join(t, "png", "masks", pngs[0])))
check(set(np.unique(one)) <= {0, 1}, "PNG masks are 0/1")
ds = json.load(open(os.path.join(t, "nnunet", "dataset.json")))
check(ds["labels"] == {"background": 0, "polyp": 1} and ds["numTraining"] == len(accepted) and ds["file_ending"] == ".png", "dataset.json")
imgs, labs = sorted(os.listdir(os.path.join(t, "nnunet", "imagesTr"))), sorted(os.listdir(os.path.join(t, "nnunet", "labelsTr")))
check([i.replace("_0000.png", ".png") for i in imgs] == labs, "nnU-Net images and labels pair up")
im = Image.open(os.path.join(t, "nnunet", "imagesTr", imgs[0]))
check(im.mode == "RGB" and im.size == Image.open(os.path.join(t, "nnunet", "labelsTr", labs[0])).size, "nnU-Net image")

e1, e2 = json.load(open(os.path.join(t, "eval-sidecar.json"))), json.load(open(os.path.join(t, "eval-png.json")))
print("masks eval:", json.dumps({k: e1[k] for k in ("images", "dice", "iou", "box_iou", "precision", "recall")}))
check(e1["images"] == e2["images"] == len(accepted), "eval image counts")
for k in ("dice", "iou", "box_iou", "precision", "recall"):
    check(abs(e1[k] - e2[k]) < 1e-12, f"sidecar and PNG folder score differently ({k})")
check(abs(e1["dice"] - r1["truth"]["dice"]) < 1e-9, "masks eval and refine disagree on Dice")
for k in ("weighted_f", "s_measure", "mean_e_measure", "mae"):
    check(0 <= e1[k] <= 1 and abs(e1[k] - e2[k]) < 1e-9, f"masks eval {k}: {e1[k]} / {e2[k]}")
check(e1["s_measure"] > 0.5 and e1["mae"] < 0.2, f"masks eval polyp scores {e1}")
# AP50: the components scored by the rows' quality (sidecar) or the map's mean (PNG folder);
# AP is at most the recall its matching reaches, and above 0 when boxes match.
for e in (e1, e2):
    check(0 < e["ap50"] <= min(1.0, e["recall"] + 0.05), f"masks eval AP50 {e['ap50']} (recall {e['recall']})")
ei = json.load(open(os.path.join(t, "eval-imported.json")))
for k in ("images", "dice", "iou", "box_iou", "precision", "recall", "weighted_f", "s_measure"):
    check(abs(ei[k] - e1[k]) < 1e-9, f"the imported masks score differently ({k}: {ei[k]} vs {e1[k]})")
si, sb = summary("imported"), summary("imported-bad")
check(si["accepted"] == len(accepted) and si["failed"] == 0 and si["unmatched_files"] == 0, f"import summary {si}")
check(sb["accepted"] == len(accepted) - 2 and sb["failed"] == 2 and sb["counts"]["failed"] == 2, f"import with bad masks {sb}")
check(sb["unmatched_files"] == 1 and sb["unmatched_examples"] == ["NOEXAM_000"], f"unmatched files {sb}")
check(sum(sb["counts"].values()) == sum(si["counts"].values()), "every store image has a row")
eb = json.load(open(os.path.join(t, "eval-bad.json")))
check(eb["skipped"] == 1 and eb["images"] == e1["images"] - 1 and len(eb["skipped_cases"]) == 1, "one undecodable case skipped")
PY
echo "localise_test: ok"
bash "$(dirname "$0")/distill_test.sh" "$BIN" "$MPIRUN" "$T"
