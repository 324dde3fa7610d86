#!/usr/bin/env bash
# Install what is missing, build, and run every test: the ctest suite, the
# same suites built with ASan+UBSan (scripts/sanitize.sh), and each libFuzzer
# harness for 30 s after its regression inputs (scripts/fuzz.sh). Arguments
# go to the first ctest run (e.g. -L reference).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)" "$@")
scripts/sanitize.sh
scripts/fuzz.sh all 30
