#!/usr/bin/env bash
# Fuzzing: builds the libFuzzer targets (tests/fuzz: csv, jsonl, config, report, shard) with
# clang in an AddressSanitizer + UndefinedBehaviorSanitizer build (build-sanitize/, shared with
# scripts/sanitize.sh) and runs each for SECONDS (default 60) from its seed corpus
# (tests/fuzz/corpus/<target>; what the fuzzer adds goes to build-sanitize/fuzz-corpus/<target>).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Exit status 0 when every target ran clean; otherwise the failing targets are named and the
# input that broke each is under build-sanitize/fuzz-crashes/ (replay: <target>_fuzz FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build=${ENDOKED_SANITIZE_BUILD:-build-sanitize}
scripts/sanitize.sh --configure-only
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then read -r -a targets < <(tr ";" " " <"$build/fuzz_targets.txt"; echo) || true; fi
echo "fuzz: building ${targets[*]} (log: $build/fuzz-build.log)"
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/%/_fuzz}" >"$build/fuzz-build.log" 2>&1 ||
  { echo "fuzz: build failed; the end of $build/fuzz-build.log:" >&2; tail -n 40 "$build/fuzz-build.log" >&2; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/fuzz-crashes"
failed=()
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus"
  log="$build/fuzz-$t.log"
  # Scratch files on a RAM disk when there is one: the shard target writes (and fsyncs) a file
  # per input.
  scratch=$(mktemp -d -p "$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
  if TMPDIR="$scratch" "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=20 \
       -rss_limit_mb=3072 -max_len=4096 -print_final_stats=1 \
       -artifact_prefix="$build/fuzz-crashes/$t-" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo "?")
    echo "fuzz: $t clean — $runs inputs in ${seconds}s, coverage $cov edges, corpus $(ls "$corpus" | wc -l) files"
  else
    echo "fuzz: $t FAILED (log: $log); the report:" >&2
    grep -E -A 12 "ERROR: |runtime error|fuzz property failed|deadly signal|Test unit written" "$log" | head -n 40 >&2
    failed+=("$t")
  fi
  rm -rf "$scratch"
done
if [ ${#failed[@]} -gt 0 ]; then echo "fuzz: failed: ${failed[*]}" >&2; exit 1; fi
