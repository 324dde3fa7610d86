#!/usr/bin/env bash
# Install what tessera needs from Debian 12 packages; idempotent and quiet
# when everything is already there. Run as root (or with sudo available).
set -euo pipefail

PKGS=(
  # build
  cmake gcc make pkg-config
  # libraries tessera links (MPI, HDF5 and inih are used by the scheduler,
  # list-mode and job-file layers)
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libtiff-dev libpng-dev
  libjpeg62-turbo-dev libinih-dev libisal-dev libdeflate-dev libzstd-dev
  # Zarr: Blosc chunks and the JSON metadata
  libblosc-dev libjansson-dev
  # your own kernels: Python functions (CPython embedded) and the
  # patch_replace plugin's BLAS; scikit-learn is its reference and peer
  libpython3-dev libopenblas-dev python3-sklearn
  # tests: independent references and readers
  python3 python3-numpy python3-scipy python3-skimage python3-opencv
  python3-tifffile python3-h5py python3-pytest python3-joblib libtiff-tools hdf5-tools procps
  # tests and benchmarks: zarr-python reads (and writes) Zarr v2 stores; dask
  # is the peer pipeline of bench/bench_zarr.py
  python3-zarr python3-numcodecs python3-dask
  # benchmarks: plots
  python3-matplotlib
  # fuzzing (tests/fuzz, scripts/fuzz.sh): clang's libFuzzer and OpenMP
  # runtimes; the seed maker's PIL (palette and interlaced PNGs)
  clang libclang-rt-14-dev libomp-dev python3-pil
  # tests: a real local Slurm cluster, and emulated hosts in network namespaces
  slurmctld slurmd slurm-client munge iproute2 iputils-ping util-linux
  # benchmarks and tests: the peer tools (vips; GDAL, whose COG validator
  # and gdalinfo check the COG and GeoTIFF outputs); valgrind counts a
  # benchmark's instructions (bench/bench_pyramid.py)
  libvips-tools gdal-bin python3-gdal valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm: the machine's own if it has them, else Debian's (the
# Zarr v3 tests read stores with zarrita, an independent implementation)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# zarrita from the npm registry, at the versions tests/zarrita/package-lock.json pins
cd "$(dirname "$0")/../tests/zarrita"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
