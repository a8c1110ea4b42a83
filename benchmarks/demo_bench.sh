#!/usr/bin/env bash
# The demo (README command 1: `endoked run --config recipes/endoked.yaml`) from nothing, timed:
# wall time in all and per stage, and the key metrics it printed, written to
# benchmarks/results/demo.{json,md}. Goal: under 5 minutes on 2 cores. It runs in a fresh folder
# (no checkpoint to resume from), with the machine's cores as the recipe sets them (2 threads).
# usage: benchmarks/demo_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/build/apps/endoked/endoked
REVISION=$(git describe --always --dirty)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
start=$(date +%s.%N)
(cd "$W" && "$BIN" run --config "$ROOT/recipes/endoked.yaml") > "$W/demo.log" 2>&1 || { tail -30 "$W/demo.log"; exit 1; }
end=$(date +%s.%N)
/usr/bin/python3 - "$W" "$start" "$end" "$REVISION" "$(nproc)" <<'PY'
import datetime, json, re, sys
w, start, end, revision, cores = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
log = open(f"{w}/demo.log").read().splitlines()
def seconds(hms):
    h, m, s = hms.split(":"); return int(h) * 3600 + int(m) * 60 + float(s)
marks = [(seconds(l[:12]), l.split("pipeline: stage ")[1]) for l in log if "pipeline: stage " in l]
last = seconds([l for l in log if re.match(r"\d\d:\d\d:\d\d\.\d{3} ", l)][-1][:12])
stages = {name: round((marks[i + 1][0] if i + 1 < len(marks) else last) - t, 1) for i, (t, name) in enumerate(marks)}
metrics = []
for l in open(f"{w}/runs/demo/pipeline.md"):
    m = re.match(r"\| (.+?) \| (.+?) \| ([0-9.]+) \|", l)
    if m and m.group(1) != "stage": metrics.append({"stage": m.group(1), "metric": m.group(2), "value": float(m.group(3))})
total = round(end - start, 1)
out = {"benchmark": "demo", "revision": revision, "cores": cores,
       "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
       "command": "endoked run --config recipes/endoked.yaml (in a fresh folder)",
       "wall_s": total, "goal_s": 300, "within_goal": total < 300, "stages_s": stages, "key_metrics": metrics}
json.dump(out, open("benchmarks/results/demo.json", "w"), indent=2)
md = [f"# The demo from nothing (revision {revision}, {cores} cores)", "",
      f"`benchmarks/demo_bench.sh`: `endoked run --config recipes/endoked.yaml` in a fresh folder: "
      f"**{total:.0f} s** (goal < 300 s: {'met' if total < 300 else 'missed'}).", "",
      "| stage | seconds |", "|---|---|"] + [f"| {k} | {v} |" for k, v in stages.items()] + [
      "", "Key metrics it printed (synthetic truth):", "", "| stage | key metric | value |", "|---|---|---|"] + [
      f"| {m['stage']} | {m['metric']} | {m['value']:.3f} |" for m in metrics]
open("benchmarks/results/demo.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
