#!/usr/bin/env bash
# run-fuzzer.sh FUZZER CORPUS_DIR SECONDS SEED...: a bounded libFuzzer run.
# New inputs go to CORPUS_DIR (in the build tree); a crash leaves its input
# there as crash-*, to be copied into tests/fuzz/regressions/<target>/.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
shift 3
mkdir -p "$corpus"
seeds=()
for s in "$@"; do [[ -e $s ]] && seeds+=("$s"); done
cd "$corpus"
exec "$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$corpus" "${seeds[@]}"
