#!/usr/bin/env bash
# Runs every fuzz target for a fixed time (seconds, default 60 each) and fails on any crash.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets it use the stable
# toolchain. Usage: fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    echo "==> $target for ${secs}s"
    # New inputs go to corpus/ (not committed); the committed seeds are read from seeds/.
    mkdir -p "corpus/$target" "seeds/$target"
    cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$secs" -print_final_stats=1
done
echo "fuzzing passed"
