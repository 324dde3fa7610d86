#!/usr/bin/env bash
# Build tessera with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DTS_SANITIZE=address,undefined) into build-asan/ and run the unit,
# reference, tiling, list, cli and mpi suites against it. Any report
# fails the test that triggered it (UBSan does not recover; LSan reports
# leaks at exit). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null
cd build-asan
ctest --output-on-failure -j"$(nproc)" -L '^(unit|reference|tiling|list|cli|mpi|plugin)$' "$@"
