#!/usr/bin/env bash
# The README's Quick start. Installs what is missing (Debian 12), builds (Release), then
#   demo — runs the demo pipeline on the synthetic corpus (recipes/endoked.yaml)
#   test — runs every test (ctest labels unit, mpi and slurm)
# Re-running is quick when nothing changed: dpkg is asked first, the build is incremental.
# Each step prints one line; the package and build logs are named there.
set -euo pipefail
what=${1:-demo}
case "$what" in demo | test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
mkdir -p build
ENDOKED_DEPS_LOG=$(pwd)/build/deps-install.log scripts/deps.sh
jobs=$(nproc)
echo "build: configuring and compiling with $jobs job(s) (log: build/build.log)"
{ cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j "$jobs"; } \
  >build/build.log 2>&1 || { echo "build: failed; the end of build/build.log:" >&2;
                             grep -E "error|Error" build/build.log | head -n 20 >&2;
                             tail -n 40 build/build.log >&2; exit 1; }
echo "build: done"
# Open MPI refuses to start as root unless told it may; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
case "$what" in
  demo) build/apps/endoked/endoked run --config recipes/endoked.yaml ;;
  test) (cd build && ctest --output-on-failure --timeout 900) ;;
esac
