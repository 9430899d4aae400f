#!/usr/bin/env bash
# The access log's cost on GET one contact: crm-server on redb with the access log on (the
# default) and off (--no-access-log), alternating, the same seeded file, wrk's get.lua.
# Prints each pair's throughput ratio and their median.
#
#   benches/load/access_log.sh
#   ACCESS_PAIRS=5 ACCESS_DURATION=15s benches/load/access_log.sh
#
# Settings (environment): ACCESS_PAIRS=3 (on/off pairs), ACCESS_DURATION=10s,
# ACCESS_CONNECTIONS=64, ACCESS_CONTACTS=5000, LOAD_SKIP_BUILD=0, LOAD_THREADS=2.
# Needs what run.sh needs (cargo, curl, jq, wrk).

set -euo pipefail

LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LOAD_DIR/../.." && pwd)
LOG_TAG=access-log
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$LOAD_DIR/lib.sh"

ACCESS_PAIRS=${ACCESS_PAIRS:-3}
ACCESS_DURATION=${ACCESS_DURATION:-10s}
ACCESS_CONNECTIONS=${ACCESS_CONNECTIONS:-64}
ACCESS_CONTACTS=${ACCESS_CONTACTS:-5000}
LOAD_SKIP_BUILD=${LOAD_SKIP_BUILD:-0}
LOAD_THREADS=${LOAD_THREADS:-2}

require_tools curl jq awk
ensure_wrk
raise_fd_limit

cd "$ROOT"
if [[ $LOAD_SKIP_BUILD != 1 ]]; then
    cargo build --release -p crm-server
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
SERVER_BIN=${LOAD_SERVER_BIN:-$TARGET_DIR/release/crm-server}
[[ -x $SERVER_BIN ]] || die "no crm-server binary at $SERVER_BIN"

make_work_dir crm-access-log
init_secrets load-admin@load.test
SERVER_PID=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SERVER_PID"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

prepare_store redb "$WORK/data" access
log "seeding $ACCESS_CONTACTS contacts"
seed_store "$SERVER_BIN" "$WORK/seed.log" 4 "$ACCESS_CONTACTS" 500 500 500 500 ||
    die "seeding failed: $(tail -n 3 "$WORK/seed.log")"

# One measured run: sets RPS.
measure() { # label extra-serve-args...
    local label=$1
    shift
    local port
    port=$(free_port)
    start_server "$SERVER_BIN" "$port" "$WORK/serve.log" 4 "$@" || die "$label: no server"
    login || die "$label: login failed"
    if [[ ! -s $WORK/ids ]]; then
        api_get "/api/v1/contacts?limit=100" | jq -r '.data[] | "\(.id) \(.version)"' >"$WORK/ids"
    fi
    local run
    for run in warmup measured; do
        local dur=$ACCESS_DURATION
        [[ $run == warmup ]] && dur=3s
        LOAD_LUA_DIR=$LOAD_DIR LOAD_TOKEN=$TOKEN LOAD_WRK_THREADS=$LOAD_THREADS \
            LOAD_IDS_FILE=$WORK/ids \
            wrk -t"$LOAD_THREADS" -c"$ACCESS_CONNECTIONS" -d"$dur" --timeout 10s --latency \
            -s "$LOAD_DIR/get.lua" "$BASE" >"$WORK/wrk.txt" 2>&1 || true
    done
    declare -gA R=()
    parse_result "$label" "$(grep '^@@RESULT' "$WORK/wrk.txt" | tail -n 1)"
    RPS=${R[$label.rps]}
    log "$(printf '%-4s %9s req/s  p50 %s ms  p99 %s ms  non-2xx %s' "$label" "$RPS" \
        "${R[$label.p50_ms]}" "${R[$label.p99_ms]}" "${R[$label.non2xx]}")"
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

RATIOS=()
for ((i = 1; i <= ACCESS_PAIRS; i++)); do
    # Alternate which goes first, so a drift of the machine does not favour one side.
    if ((i % 2)); then
        measure on
        ON=$RPS
        measure off --no-access-log
        OFF=$RPS
    else
        measure off --no-access-log
        OFF=$RPS
        measure on
        ON=$RPS
    fi
    RATIO=$(awk -v a="$ON" -v b="$OFF" 'BEGIN { printf "%.3f", a / b }')
    RATIOS+=("$RATIO")
    echo "pair $i: on $ON req/s, off $OFF req/s, on/off $RATIO"
done
MEDIAN=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "median on/off throughput ratio over $ACCESS_PAIRS pairs: $MEDIAN (${RATIOS[*]})"
