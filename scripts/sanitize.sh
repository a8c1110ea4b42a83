#!/usr/bin/env bash
# The ASan + UBSan build (clang; CMake options ENDOKED_SANITIZE and ENDOKED_FUZZ) in
# build-sanitize/: builds the unit tests and runs them under the sanitizers, then runs every
# fuzz target for FUZZ_SECONDS (default 20) with scripts/fuzz.sh. CI runs this after the tests.
#   scripts/sanitize.sh [FUZZ_SECONDS]
#   scripts/sanitize.sh --configure-only     (used by scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ENDOKED_SANITIZE_BUILD:-build-sanitize}
mkdir -p "$build"
ENDOKED_DEPS_LOG=$(pwd)/$build/deps-install.log scripts/deps.sh sanitize
# -O1 with line tables: readable sanitizer stacks at a fraction of a debug build's size. No MPI
# backend and no benchmarks here: the unit tests and the fuzzers are what this build is for.
# (Configured every time: quick with a cache, and new targets appear.)
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
  -DENDOKED_SANITIZE=ON -DENDOKED_FUZZ=ON -DENDOKED_WITH_MPI=OFF \
  -DENDOKED_BUILD_BENCHMARKS=OFF >"$build/configure.log" 2>&1 ||
  { echo "sanitize: configure failed; see $build/configure.log" >&2; tail -n 20 "$build/configure.log" >&2; exit 1; }
[ "${1:-}" = "--configure-only" ] && exit 0
fuzz_seconds=${1:-20}
echo "sanitize: building the unit tests with ASan+UBSan (log: $build/build.log)"
cmake --build "$build" -j "$(nproc)" --target endoked_unit_tests >"$build/build.log" 2>&1 ||
  { echo "sanitize: build failed; the end of $build/build.log:" >&2; tail -n 40 "$build/build.log" >&2; exit 1; }
# Leak detection stays on: a leak fails the test like any other report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "sanitize: unit tests under ASan+UBSan"
(cd "$build" && ctest -L unit --output-on-failure --timeout 900 -j 2) >"$build/ctest.log" 2>&1 ||
  { echo "sanitize: unit tests failed; the end of $build/ctest.log:" >&2; tail -n 60 "$build/ctest.log" >&2; exit 1; }
grep -E "tests passed|Total Test time" "$build/ctest.log" | sed 's/^/sanitize: /'
scripts/fuzz.sh "$fuzz_seconds"
