#!/usr/bin/env bash
# The stall watchdog: rank 1 of 3 sleeps past a 1 s timeout. The job must exit non-zero within
# twice the timeout of entering the collective, with rank 0 naming rank 1.
set -uo pipefail
BIN=$1
MPIRUN=${2:-mpirun}
out=$(timeout 60 "$MPIRUN" -np 3 --oversubscribe --bind-to none "$BIN" 1.0 1 2>&1)
code=$?
echo "$out" | grep -v "^\s*$" | tail -n 20
[ "$code" -ne 0 ] || { echo "FAIL: the stalled job exited 0"; exit 1; }
[ "$code" -ne 124 ] || { echo "FAIL: the stalled job hung until the outer timeout"; exit 1; }
line=$(echo "$out" | grep "rank(s) 1 did not arrive") || { echo "FAIL: rank 1 was not named"; exit 1; }
after=$(echo "$line" | sed -n 's/.*(after \([0-9.]*\) s).*/\1/p' | head -1)
/usr/bin/python3 -c "import sys; t = float(sys.argv[1]); sys.exit(0 if t < 2.0 else 1)" "$after" ||
  { echo "FAIL: reported after $after s, not within 2 s"; exit 1; }
echo "stall: rank 1 named after $after s (timeout 1 s), exit code $code"
