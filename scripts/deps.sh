#!/usr/bin/env bash
# Installs the Debian 12 packages endoked builds and tests with (TOOLCHAIN list).
# Quick when everything is present: it asks dpkg first and runs apt-get only for what is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev
  libopencv-dev libturbojpeg0-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libcurl4-openssl-dev libcpp-httplib-dev libgloo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-h5py-mpi python3-numpy
  # reference peers for benchmarks (python3-torch DataLoader, OpenCV)
  python3-torch python3-torchvision python3-opencv
)

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

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
