#!/usr/bin/env bash
# The change feed's cost on a durable create, A/B in one run: builds the `create_ab` bench
# with the feed (A) and without it (B, feature `bench-no-feed`), runs them alternately
# ROUNDS times (default 3), and prints the median of each metric and the ratio A / B.
#
#   benches/load/feed-ab.sh [ROUNDS]
#
# Needs PostgreSQL as the store's tests find one (CRM_TEST_DATABASE_URL or 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
out="$(mktemp -d)"
build() {
    cargo bench -p crm-benches --bench create_ab --no-run "$@" 2>&1 |
        sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1
}
cp "$(build)" "$out/with-feed"
cp "$(build --features bench-no-feed)" "$out/without-feed"
for r in $(seq "$rounds"); do
    for v in with-feed without-feed; do
        echo "round $r: $v" >&2
        "$out/$v" | grep '^RESULT' >>"$out/results"
    done
done
echo "raw results: $out/results" >&2
# Median per (variant, store, metric), then the ratio feed / no-feed.
sort -k2,2 -k3,3 -k4,4 -k5,5g "$out/results" | awk '
    { key = $2 " " $3 " " $4; v[key, ++n[key]] = $5; keys[key] = 1 }
    END {
        for (k in keys) { m = n[k]; med[k] = (m % 2) ? v[k, (m + 1) / 2] : (v[k, m / 2] + v[k, m / 2 + 1]) / 2 }
        for (k in keys) {
            split(k, p, " ");
            if (p[1] != "feed") continue;
            b = "no-feed " p[2] " " p[3];
            printf "%-9s %-32s feed %10.1f  no-feed %10.1f  ratio %.3f\n", p[2], p[3], med[k], med[b], med[k] / med[b];
        }
    }' | sort
