#!/usr/bin/env bash
# run_one.sh HARNESS SEEDS NAME SECONDS [libFuzzer options...]
# The regression inputs once each, then SECONDS of fuzzing from the seeds
# (the corpus grows in SEEDS/../corpus/NAME and is kept between runs). Any
# crash, leak, timeout (10 s an input), memory above 2 GiB or sanitizer
# report fails; the input that did it is kept in SEEDS/../artifacts/.
set -uo pipefail
bin=$1 seeds=$2 name=$3 secs=$4
shift 4
top=$(dirname "$seeds")
corpus=$top/corpus/$name
mkdir -p "$corpus" "$top/artifacts" "$top/logs"
log=$top/logs/$name.log
# libhdf5 sizes some metadata buffers (a local heap, an object header) from
# the file before it checks them against the file's end: a forged size is
# one large allocation, never touched, that the read past the end then
# refuses. The HDF5 harnesses allow such allocations; RSS stays capped.
malloc=2048
case $name in hdf5*) malloc=65536 ;; esac
opts=(-rss_limit_mb=2048 -malloc_limit_mb=$malloc -timeout=10 -max_len=65536 -print_final_stats=1
      -artifact_prefix="$top/artifacts/$name-" "$@")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
# libhdf5 1.10.8 leaks metadata-cache entries when an object header is
# corrupt (H5Dopen2 failing inside H5O_protect): libhdf5's, not ours; the
# harnesses check separately that every HDF5 object tessera opens is closed
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(dirname "$0")/lsan.supp:print_suppressions=0}
if compgen -G "$seeds/regress/$name/*" >/dev/null; then
  if ! "$bin" "${opts[@]}" "$seeds/regress/$name"/* >"$log" 2>&1; then
    echo "fuzz $name: a regression input fails:"; tail -n 60 "$log"; exit 1
  fi
fi
"$bin" "${opts[@]}" -max_total_time="$secs" "$corpus" "$seeds/$name" >>"$log" 2>&1
rc=$?
grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|^#[0-9]+ *DONE" "$log" | tail -4
if [ $rc -ne 0 ]; then
  echo "fuzz $name: finding (exit $rc):"; grep -v "^#[0-9]" "$log" | tail -n 80; exit 1
fi
