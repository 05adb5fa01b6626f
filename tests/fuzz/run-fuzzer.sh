#!/usr/bin/env bash
# run-fuzzer.sh FUZZER CORPUS_DIR SECONDS SEED...: a bounded libFuzzer run.
# Seeds (files or directories) are copied into CORPUS_DIR/seeds, since
# libFuzzer takes only directories; new inputs go to CORPUS_DIR/found (in
# the build tree). A crash leaves its input in CORPUS_DIR as crash-*: copy
# it into tests/fuzz/regressions/<target>/ so every build replays it.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
shift 3
mkdir -p "$corpus/seeds" "$corpus/found"
for s in "$@"; do
  if [[ -d $s ]]; then
    cp -r "$s/." "$corpus/seeds/" 2>/dev/null || true
  elif [[ -f $s ]]; then
    cp "$s" "$corpus/seeds/"
  fi
done
cd "$corpus"
# libFuzzer exits 77 on a crash by default, which meson reads as "skipped":
# a crash must fail the test.
exec "$fuzzer" -max_total_time="$seconds" -max_len=131072 -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 "$corpus/found" "$corpus/seeds"
