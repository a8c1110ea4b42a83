#!/usr/bin/env bash
# Distill on the pseudo masks localise_test.sh made (it calls this with its folder: records,
# labels, truth, masks1 = the default refiner's masks on the demo's synthetic corpus):
#   - 1 rank, 2 rounds, negatives from the labels, truth given: round 1's masks sidecar and the
#     last round's (kind masks, provenance with the round and the masks trained on), model.pt and
#     model.json, the curves and the montage in the run directory; the distilled Dice on the
#     pseudo masks' images at least DICE and no more than MARGIN below the pseudo masks' own Dice
#     (the line printed says by how much it beats them or falls short); held-out Dice ≥ HELD;
#   - 2 ranks (PraNet decoder): preempted in round 2 (SIGUSR1) → exit 75 → the same command continues (round 1
#     resumed, its output replaced without `overwrite`) and writes the model and masks of an
#     uninterrupted 2-rank run, byte for byte;
#   - a masks sidecar with no accepted mask, and an existing output without overwrite: errors
#     that say so;
#   - re-refinement in the rounds with the tiny SAM from the embedding cache localise_test.sh's
#     refine runs filled: every accepted prediction refined again, nothing encoded; the cam
#     refiner (needs a CAM) refused; multi-scale training (scales 0.5, 1, 1.5) trains at several
#     sides;
#   - a torchvision ResNet-18 state dict (as torchvision saves it) loads as the encoder: every
#     tensor but the classifier under encoder.*, unchanged after training at lr 1e-12;
#   - model.ts loads in Python (torch.jit.load) and gives probabilities for any batch size;
#   - segment on 2 ranks over the record store writes one 0/255 mask per image at its size, equal
#     to distill's own masks where distill predicted; over a folder with an undecodable file, the
#     others are written and that one is named; an output folder with files in it is refused.
set -euo pipefail
BIN=$1
MPIRUN=$2
T=$3
mpi() { local n=$1; shift; timeout 600 "$MPIRUN" -np "$n" --oversubscribe --bind-to none "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
DICE=${DICE:-0.40}
MARGIN=${MARGIN:-0.05}
HELD=${HELD:-0.15}

d=(--set distill.store="$T/records" --set distill.masks="$T/masks1" --set distill.threads=1)
"$BIN" distill "${d[@]}" --set distill.threads=2 --set distill.labels="$T/labels" --set distill.truth="$T/truth" \
  --set distill.rounds=2 --set distill.round_epochs=2 --set distill.trainer.epochs=6 \
  --set distill.output="$T/distill" --set run.dir="$T/run-d1" > "$T/d1.log" 2>&1 || { tail -20 "$T/d1.log"; fail "distill"; }
for f in curves-distill-loss.png curves-distill-dice.png montage-distill.png; do
  [ -s "$T/run-d1/$f" ] || fail "no $f in the distill run directory"
done
[ -s "$T/distill/model.pt" ] && [ -s "$T/distill/model.json" ] || fail "no model.pt / model.json beside the output"
"$BIN" distill "${d[@]}" --set distill.output="$T/distill" --set run.dir="$T/run-d1b" > "$T/d1b.log" 2>&1 && fail "distill over an existing output without overwrite"
grep -q "overwrite" "$T/d1b.log" || { tail -5 "$T/d1b.log"; fail "the refusal does not name overwrite"; }
# A masks sidecar with no accepted mask: refine of the localise run that accepted no box.
"$BIN" refine --set refine.store="$T/records" --set refine.boxes="$T/strict-none" \
  --set refine.output="$T/masks-none" --set run.dir="$T/run-rn" > /dev/null 2>&1 || fail "refine of no boxes"
"$BIN" distill "${d[@]}" --set distill.masks="$T/masks-none" --set distill.output="$T/distill-none2" \
  --set run.dir="$T/run-d00" > "$T/d00.log" 2>&1 && fail "distill without a mask to learn from"
grep -q "no accepted mask" "$T/d00.log" || { tail -5 "$T/d00.log"; fail "the error does not say there is no accepted mask"; }

# Re-refinement inside the rounds: the tiny SAM of localise_test.sh from the embedding cache its
# refine runs filled (every image the pseudo masks refined): nothing encoded, every accepted
# prediction refined again from the cache. A refiner that needs the CAM is refused.
rr=("${d[@]}" --set distill.image_size=64 --set distill.rounds=2 --set distill.trainer.epochs=1
  --set distill.round_epochs=1 --set distill.montage=0 --set distill.refine.refiner=sam
  --set distill.refine.options.sam.checkpoint="$T/sam.pt" --set distill.refine.options.sam.min_predicted_iou=-1
  --set distill.refine.options.sam.min_stability=0 --set distill.refine.options.sam.min_prompt_box_iou=0
  --set distill.refine.cache="$T/sam-cache" --set distill.refine.batch=3 --set distill.accept.min_box_share=0
  --set "distill.scales=[0.5,1,1.5]")
"$BIN" distill "${rr[@]}" --set distill.output="$T/dist-rr" --set run.dir="$T/run-rr" > "$T/rr.log" 2>&1 || { tail -20 "$T/rr.log"; fail "distill with sam re-refinement"; }
"$BIN" distill "${d[@]}" --set distill.refine.refiner=cam --set distill.output="$T/dist-cam" \
  --set run.dir="$T/run-rc" > "$T/rc.log" 2>&1 && fail "distill re-refining with the cam refiner"
grep -q "needs the CAM" "$T/rc.log" || { tail -5 "$T/rc.log"; fail "the cam refusal does not say why"; }

mpi 2 "$BIN" segment --checkpoint "$T/distill" --store "$T/records" --output "$T/seg" --set segment.threads=1 \
  --set run.dir="$T/run-seg" > "$T/seg.log" 2>&1 || { tail -20 "$T/seg.log"; fail "2-rank segment"; }
mkdir -p "$T/folder/sub"
/usr/bin/python3 - "$T" <<'PY' || fail "folder for segment"
import glob, os, sys
import h5py
t = sys.argv[1]
h = h5py.File(sorted(glob.glob(os.path.join(t, "records", "shard-*.h5")))[0], "r")
for r in range(2):
    o, l = h["images/bytes_offset"][r], h["images/bytes_length"][r]
    open(os.path.join(t, "folder", "sub" if r else "", f"img{r}.jpg"), "wb").write(h["images/bytes"][o:o + l].tobytes())
open(os.path.join(t, "folder", "sub", "broken.png"), "wb").write(b"not a png")
PY
"$BIN" segment --checkpoint "$T/distill/model.pt" --images "$T/folder" --output "$T/seg-folder" \
  --set run.dir="$T/run-segf" > "$T/segf.log" 2>&1 || { tail -20 "$T/segf.log"; fail "segment over a folder"; }
grep -q "skipped sub/broken.png" "$T/segf.log" || { tail -5 "$T/segf.log"; fail "the undecodable file is not named"; }
[ -s "$T/seg-folder/masks/img0.png" ] && [ -s "$T/seg-folder/masks/sub/img1.png" ] && [ -s "$T/seg-folder/overlays/sub/img1.png" ] || fail "segment over a folder: masks/overlays missing"
"$BIN" segment --checkpoint "$T/distill" --images "$T/folder" --output "$T/seg-folder" \
  --set run.dir="$T/run-segf2" > "$T/segf2.log" 2>&1 && fail "segment into a folder with files in it"
grep -q "not an empty folder" "$T/segf2.log" || { tail -5 "$T/segf2.log"; fail "the refusal does not say why"; }

# 2 ranks, small and short (the PraNet decoder): uninterrupted, then preempted in round 2 and continued
# (round 1: 2 epochs of 23 steps; the signal comes at step 50, only round 2 has that many).
small=("${d[@]}" --set distill.labels="$T/labels" --set distill.model.arch=pranet --set distill.image_size=64 --set distill.batch_size=8
  --set distill.rounds=2 --set distill.trainer.epochs=2 --set distill.round_epochs=6 --set distill.montage=0)
mpi 2 "$BIN" distill "${small[@]}" --set distill.output="$T/dist2a" --set run.dir="$T/run-d2a" > "$T/d2a.log" 2>&1 || { tail -20 "$T/d2a.log"; fail "2-rank distill"; }
set +e
ENDOKED_TEST_SIGNAL_AT_STEP=50 mpi 2 "$BIN" distill "${small[@]}" --set distill.output="$T/dist2b" --set run.dir="$T/run-d2b" > "$T/d2b.log" 2>&1
code=$?
set -e
[ "$code" = 75 ] || { tail -20 "$T/d2b.log"; fail "preempted distill exited $code, not 75"; }
grep -q "distill-round2: preempted" "$T/d2b.log" || { grep preempted "$T/d2b.log"; fail "not preempted in round 2"; }
[ -f "$T/dist2b-round1/manifest.json" ] || fail "round 1's output was not kept at preemption"
mpi 2 "$BIN" distill "${small[@]}" --set distill.output="$T/dist2b" --set run.dir="$T/run-d2b" > "$T/d2c.log" 2>&1 || { tail -20 "$T/d2c.log"; fail "distill after preemption"; }
grep -q "resumed from" "$T/d2c.log" || fail "the rerun did not resume"
cmp -s "$T/dist2a/model.pt" "$T/dist2b/model.pt" || fail "preempted + resumed model differs from the uninterrupted one"

# A torchvision ResNet-18 state dict as torchvision saves it (randomised: no download here) as the
# encoder: loaded under encoder.*, the classifier left out; at a learning rate of 1e-12 the trained
# model's convolutions are still torchvision's.
/usr/bin/python3 - "$T/r18.pth" <<'PY' || fail "torchvision ResNet-18 state dict"
import sys, torch, torchvision
torch.manual_seed(3)
m = torchvision.models.resnet18()
with torch.no_grad():
    for p in m.parameters():
        p.copy_(torch.randn_like(p) * 0.05)
torch.save(m.state_dict(), sys.argv[1])
PY
"$BIN" distill "${d[@]}" --set distill.model.width=64 --set distill.model.weights="$T/r18.pth" \
  --set distill.image_size=64 --set distill.trainer.epochs=1 --set distill.trainer.lr_schedule.lr=1e-12 \
  --set distill.montage=0 --set distill.output="$T/dist-tv" --set run.dir="$T/run-tv" > "$T/tv.log" 2>&1 || { tail -20 "$T/tv.log"; fail "distill from torchvision weights"; }
grep -q "tensor(s) loaded (the encoder), 2 classifier tensor(s) left out" "$T/tv.log" || { grep weights "$T/tv.log"; fail "the torchvision weights were not loaded as the encoder"; }

/usr/bin/python3 - "$T" "$DICE" "$MARGIN" "$HELD" <<'PY' || fail "checks (above)"
import glob, json, os, sys
import h5py, torch
t, dice_min, margin, held_min = sys.argv[1], *map(float, sys.argv[2:])
def manifest(d): return json.load(open(os.path.join(t, d, "manifest.json")))
def check(ok, what):
    if not ok: print("FAIL:", what); sys.exit(1)
def rows(d):
    out = {}
    for f in sorted(glob.glob(os.path.join(t, d, "shard-*.h5"))):
        h = h5py.File(f, "r")
        o, l = h["images/mask_offset"][:], h["images/mask_length"][:]
        st = h["images/status"][:]
        ids, first, n = h["exams/id"][:], h["exams/first_image"][:], h["exams/image_count"][:]
        for e in range(len(ids)):
            for k in range(n[e]):
                r = first[e] + k
                out[(ids[e].decode(), k)] = (st[r], h["images/mask"][o[r]:o[r] + l[r]].tobytes())
    return out
m1, m = manifest("distill-round1"), manifest("distill")
check(m1["kind"] == m["kind"] == "masks", "distill outputs are masks sidecars")
check(m1["provenance"]["round"] == 1 and m["provenance"]["round"] == 2, "rounds in the provenance")
check(m1["provenance"]["masks"].endswith("/masks1") and m["provenance"]["masks"].endswith("/distill-round1"), "the masks each round learnt")
s = m["summary"]
r1 = m1["summary"]
pseudo, dice = r1["truth"]["train_masks_dice"], s["truth"]["dice"]
held = s["heldout"]["dice"]
print(f"distill: round 1 trained on {r1['trained_on']} masks + {r1['negatives']} negatives; "
      f"Dice on their images {r1['truth']['dice']:.3f} after round 1, {dice:.3f} after round 2; "
      f"the pseudo masks' {pseudo:.3f}: {'beats them by' if dice >= pseudo else 'falls short by'} {abs(dice - pseudo):.3f}; "
      f"held-out Dice {held:.3f} on {s['heldout_images']} images")
check(r1["negatives"] > 0, "no negative images from the labels")
check(dice >= dice_min, f"distilled Dice {dice:.3f} < {dice_min}")
check(dice >= pseudo - margin, f"distilled Dice {dice:.3f} more than {margin} below the pseudo masks' {pseudo:.3f}")
check(held >= held_min, f"held-out Dice {held:.3f} < {held_min}")
for k in ("iou", "weighted_f", "s_measure", "mean_e_measure", "mae"):
    check(0 <= s["heldout"][k] <= 1, f"held-out {k} {s['heldout'][k]}")
check(s["accepted"] + sum(s["rejects"].values()) == s["predicted"] == r1["predicted"], "predicted = accepted + rejects")
model = json.load(open(os.path.join(t, "distill", "model.json")))
check(model["arch"] == "unet" and model["image_size"] == 128, f"model.json {model}")
a, b = rows("dist2a"), rows("dist2b")
check(a == b and len(a) > 0, "preempted + resumed masks differ from the uninterrupted run's")

tv, ours = torch.load(os.path.join(t, "r18.pth")), torch.load(os.path.join(t, "dist-tv", "model.pt"))
convs = [k for k in tv if k.endswith("conv1.weight") or k.endswith("conv2.weight") or k.endswith("downsample.0.weight")]
check(len(convs) == 20 and all(("encoder." + k) in ours for k in tv if not k.startswith("fc.")), "encoder.* names")
worst = max(float((ours["encoder." + k] - tv[k]).abs().max()) for k in convs)
check(worst < 1e-6, f"the distilled encoder's convolutions moved {worst} from torchvision's")
print(f"torchvision weights: {len(tv) - 2} tensors as encoder.*, convolutions within {worst:.1e} after training at lr 1e-12")

# Re-refinement: every accepted prediction refined again by sam, all from the cache.
for d in ("dist-rr-round1", "dist-rr"):
    r = manifest(d)["summary"]
    f = r["features"]
    refiners = {}
    for fn in sorted(glob.glob(os.path.join(t, d, "shard-*.h5"))):
        h = h5py.File(fn, "r")
        for st, rf in zip(h["images/status"][:], h["images/refiner"][:]):
            if rf:
                refiners[rf.decode()] = refiners.get(rf.decode(), 0) + 1
    print(f"re-refinement {d}: {json.dumps(f)}, rows by refiner {refiners}, accepted {r['accepted']}")
    check(r["refiner"] == "sam" and f["encoded"] == 0 and f["damaged"] == 0 and f["added"] == 0, f"{d}: features {f}")
    check(f["cached"] == refiners.get("distill+sam", 0) > 0, f"{d}: refined again {refiners}, from the cache {f['cached']}")
    check(sum(refiners.values()) == r["predicted"] and r["accepted"] + sum(r["rejects"].values()) == r["predicted"], f"{d}: rows")
    check(r["accepted"] <= refiners.get("distill+sam", 0), f"{d}: an accepted mask was not refined again")
    sizes = r["input_sizes"]  # multi-scale training: 64 px × 0.5, 1, 1.5
    check(set(sizes) <= {"32", "64", "96"} and len(sizes) >= min(2, r["steps"]) and sum(sizes.values()) == r["steps"], f"{d}: input sizes {sizes}")

import io
import numpy as np, torch
from PIL import Image
ts = torch.jit.load(os.path.join(t, "distill", "model.ts"))
for n in (1, 3):
    y = ts(torch.randn(n, 3, 128, 128))
    check(tuple(y.shape) == (n, 1, 128, 128) and float(y.min()) >= 0 and float(y.max()) <= 1, f"model.ts output {tuple(y.shape)}")
seg = json.load(open(os.path.join(t, "seg", "segment.json")))
check(seg["written"] == seg["images"] and seg["skipped"] == 0 and seg["ranks"] == 2, f"segment.json {seg}")
distilled = rows("distill")
records = {}
for f in sorted(glob.glob(os.path.join(t, "records", "shard-*.h5"))):
    h = h5py.File(f, "r")
    ids, first, n = h["exams/id"][:], h["exams/first_image"][:], h["exams/image_count"][:]
    for e in range(len(ids)):
        for k in range(n[e]):
            r = first[e] + k
            records[(ids[e].decode(), k)] = (h["images/source_path"][r].decode(), h["images/width"][r], h["images/height"][r])
check(len(records) == seg["images"], "segment wrote one mask per image")
compared = 0
for key, (path, w, hgt) in records.items():
    m = np.array(Image.open(os.path.join(t, "seg", "masks", os.path.splitext(path)[0] + ".png")))
    check(m.shape == (hgt, w) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}, f"mask of {path}: {m.shape} {m.dtype}")
    status, blob = distilled[key]
    if blob:
        ours = np.array(Image.open(io.BytesIO(blob))) > 0
        check(((m > 127) == ours).all(), f"segment's mask of {path} differs from distill's")
        compared += 1
check(compared == s["predicted"], f"compared {compared} masks with distill's, it predicted {s['predicted']}")
print(f"segment: {seg['written']} masks on 2 ranks, {compared} equal to distill's own")
PY
echo "distill_test: ok"
