#!/usr/bin/env bash
# scripts/fuzz.sh TARGET [SECONDS]: build the libFuzzer harnesses (clang,
# ASan+UBSan; tests/fuzz) into build-fuzz/ and fuzz TARGET for SECONDS
# (default 600) from its seeds, after its regression inputs. TARGET "all"
# runs every harness through ctest, two at a time; "list" names them.
# Findings (the input, and the report) are in build-fuzz/tests/fuzz/
# artifacts/ and logs/; the corpus grows in corpus/ and is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET|all|list [SECONDS]}
secs=${2:-600}
scripts/setup.sh
CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_FUZZ_SECONDS="$secs" >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
cd build-fuzz/tests/fuzz
if [ "$target" = list ]; then
  ls fuzz_* | sed 's/^fuzz_//'
elif [ "$target" = all ]; then
  ctest --output-on-failure -j"$(nproc)" -L fuzz
else
  [ -x "fuzz_$target" ] || { echo "scripts/fuzz.sh: no harness '$target' (scripts/fuzz.sh list)" >&2; exit 2; }
  dict=$(ctest -N -V -R "^fuzz\.$target\$" | grep -o -- '-dict=[^ "]*' || true)
  ../../../tests/fuzz/run_one.sh "./fuzz_$target" seeds "$target" "$secs" $dict
fi
