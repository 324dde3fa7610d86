#!/usr/bin/env bash
# Install what is missing, build, and run tessera's main job on the built-in
# demo: a deterministic 16384 x 16384 image, denoised, smoothed, and turned
# into an edge map, tile by tile with every core, written as a pyramidal
# OME-TIFF in the same pass (QuPath, napari and tifffile open its levels).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
mkdir -p build/demo
in=build/demo/demo-16384.tif
out=build/demo/edges-16384.ome.tif
if [ ! -f "$in" ]; then
  echo "demo: generating $in (16384 x 16384 u8, tiled)"
  build/tessera generate -o "$in" --size 16384x16384 --quiet
fi
build/tessera info "$in"
pipeline="median size=3 | gaussian sigma=2 | sobel | threshold value=20"
echo "demo: tessera run -p \"$pipeline\""
build/tessera run -i "$in" -o "$out" -p "$pipeline" --compression deflate --pyramid --force
build/tessera info "$out" | grep -E "^(layout|level)"
echo "demo: output is $(realpath "$out")"
