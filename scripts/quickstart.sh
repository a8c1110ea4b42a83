#!/usr/bin/env bash
# The README's Quick start. Installs what is missing (Debian 12), builds (Release), then
#   demo — runs the demo pipeline on the synthetic corpus (recipes/endoked.yaml)
#   test — runs every test (ctest labels unit and mpi)
# Re-running is quick when nothing changed: dpkg is asked first, the build is incremental.
set -euo pipefail
what=${1:-demo}
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
cmake --build build -j "$jobs"
# Open MPI refuses to start as root without these (TOOLCHAIN #4); harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
case "$what" in
  demo) build/apps/endoked/endoked run --config recipes/endoked.yaml ;;
  test) (cd build && ctest --output-on-failure --timeout 900) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
