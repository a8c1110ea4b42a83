#!/usr/bin/env bash
# Preemption: a signal on one rank stops every rank at the same step with the requeue code (75).
set -uo pipefail
BIN=$1
MPIRUN=${2:-mpirun}
for case in "1 3 USR1" "2 5 TERM"; do
  set -- $case
  out=$(timeout 60 "$MPIRUN" -np 3 --oversubscribe --bind-to none "$BIN" "$1" "$2" "$3" 2>&1)
  code=$?
  echo "$out" | grep "stops at" || true
  [ "$code" = 75 ] || { echo "FAIL ($case): exit code $code, expected 75"; echo "$out" | tail -5; exit 1; }
  n=$(echo "$out" | grep -c "stops at step $2\$")
  [ "$n" = 3 ] || { echo "FAIL ($case): $n of 3 ranks stopped at step $2"; exit 1; }
done
echo "preemption: all ranks stopped at the signalled step with exit code 75"
