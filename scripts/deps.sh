#!/usr/bin/env bash
# Installs the Debian 12 packages endoked builds and tests with. Quick when everything is
# present: it asks dpkg first and runs apt-get only for what is missing. apt's output goes to a
# log file; the terminal gets one line per step.
#   scripts/deps.sh            what builds, runs and tests endoked
#   scripts/deps.sh sanitize   the same, plus clang and its sanitizer/libFuzzer runtimes
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  # LibTorch (CPU) and the BLAS it should use (OpenBLAS shares libgomp with torch; without it
  # the reference BLAS may be picked and matrix products run several times slower)
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev
  libopencv-dev libturbojpeg0-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libssl-dev                                  # SHA-256 (OpenSSL EVP)
  libcurl4-openssl-dev                        # the LLM client
  libcpp-httplib-dev                          # the local chat server in the LLM tests
  libgtest-dev
  python3 python3-h5py-mpi python3-numpy      # tests read stores with h5py alone
  python3-torch python3-torchvision           # reference outputs (ResNet) and benchmark peers
  python3-opencv                              # the Python DataLoader peer of the loader benchmark
  python3-pil                                 # reference decodes (CMYK JPEG) in the tests
  slurmctld slurmd slurm-client munge         # the Slurm test runs a one-node cluster of its own
)
if [ "${1:-}" = "sanitize" ]; then
  packages+=(clang libclang-rt-14-dev)        # scripts/sanitize.sh, scripts/fuzz.sh
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

log=${ENDOKED_DEPS_LOG:-$(pwd)/deps-install.log}
echo "deps: installing ${#missing[@]} package(s): ${missing[*]} (log: $log)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "deps: apt-get failed; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
echo "deps: installed"
