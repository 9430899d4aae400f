#!/usr/bin/env bash
# crm-server in several variants — other `serve` flags, or other binaries — on one seeded
# redb file (or PostgreSQL database), alternating, each round running every variant in turn (the order rotates from
# round to round so that a drift of the machine favours none). Prints each variant's median
# req/s and its ratio to the first variant's median.
#
#   VARIANTS=$'default|\nno-access-log|--no-access-log' benches/load/variants.sh
#   VARIANTS=$'main|@/tmp/crm-server-main\nnow|' VARIANTS_LUA=list-tasks.lua benches/load/variants.sh
#
# VARIANTS: one variant a line, `label|serve args` (space separated); an argument
# `@/path/to/crm-server` picks that binary for the variant instead of this tree's.
# VARIANTS_STORE=postgres runs every variant on one fresh database of the server at
# CRM_TEST_DATABASE_URL (else 127.0.0.1:5432), dropped at the end.
# Other settings (environment): VARIANTS_ROUNDS=3, VARIANTS_DURATION=8s,
# VARIANTS_CONNECTIONS=64, VARIANTS_LUA=get.lua (any workload of this folder that reads
# LOAD_IDS_FILE), VARIANTS_CONTACTS=5000, VARIANTS_TASKS=2000, LOAD_SKIP_BUILD=0,
# LOAD_THREADS=2. Every request sends `Accept-Encoding: gzip` (common.lua).
# Needs what run.sh needs (cargo, curl, jq, wrk).

set -euo pipefail

LOG_TAG=variants
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VARIANTS=${VARIANTS:-$'default|\nno-access-log|--no-access-log'}
VARIANTS_ROUNDS=${VARIANTS_ROUNDS:-3}
VARIANTS_DURATION=${VARIANTS_DURATION:-8s}
VARIANTS_CONNECTIONS=${VARIANTS_CONNECTIONS:-64}
VARIANTS_LUA=${VARIANTS_LUA:-get.lua}
VARIANTS_STORE=${VARIANTS_STORE:-redb}
PG_ADMIN_URL=${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
VARIANTS_CONTACTS=${VARIANTS_CONTACTS:-5000}
VARIANTS_TASKS=${VARIANTS_TASKS:-2000}
LOAD_SKIP_BUILD=${LOAD_SKIP_BUILD:-0}
LOAD_THREADS=${LOAD_THREADS:-2}

require_tools curl jq awk
ensure_wrk
raise_fd_limit

build_release -p crm-server
SERVER_BIN=${LOAD_SERVER_BIN:-$TARGET_DIR/release/crm-server}
[[ -x $SERVER_BIN ]] || die "no crm-server binary at $SERVER_BIN"

make_work_dir crm-variants
init_secrets load-admin@load.test
SERVER_PID=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SERVER_PID"
    drop_pg_db
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

LABELS=()
declare -A ARGS=() BINS=() SAMPLES=()
while IFS= read -r line; do
    [[ -n $line ]] || continue
    label=${line%%|*}
    LABELS+=("$label")
    BINS[$label]=$SERVER_BIN
    rest=()
    for a in ${line#*|}; do
        if [[ $a == @* ]]; then BINS[$label]=${a#@}; else rest+=("$a"); fi
    done
    ARGS[$label]="${rest[*]}"
    [[ -x ${BINS[$label]} ]] || die "$label: no binary at ${BINS[$label]}"
done <<<"$VARIANTS"
((${#LABELS[@]} >= 1)) || die "no variants"

prepare_store "$VARIANTS_STORE" "$WORK/data" variants || die "$STORE_ERROR"
log "seeding $VARIANTS_CONTACTS contacts, $VARIANTS_TASKS tasks"
seed_store "$SERVER_BIN" "$WORK/seed.log" 4 "$VARIANTS_CONTACTS" 500 500 "$VARIANTS_TASKS" 500 ||
    die "seeding failed: $(tail -n 3 "$WORK/seed.log")"

measure() { # label: one warm-up and one measured run; appends req/s to SAMPLES[label]
    local label=$1 port
    port=$(free_port)
    # shellcheck disable=SC2086 # the variant's arguments are words
    start_server "${BINS[$label]}" "$port" "$WORK/serve.log" 4 ${ARGS[$label]} ||
        die "$label: no server ($(tail -n 3 "$WORK/serve.log"))"
    login || die "$label: login failed"
    if [[ ! -s $WORK/ids ]]; then
        api_get "/api/v1/contacts?limit=100" | jq -r '.data[] | "\(.id) \(.version)"' >"$WORK/ids"
    fi
    local run dur
    for run in warmup measured; do
        dur=$VARIANTS_DURATION
        [[ $run == warmup ]] && dur=3s
        LOAD_LUA_DIR=$LOAD_DIR LOAD_TOKEN=$TOKEN LOAD_WRK_THREADS=$LOAD_THREADS \
            LOAD_IDS_FILE=$WORK/ids \
            wrk -t"$LOAD_THREADS" -c"$VARIANTS_CONNECTIONS" -d"$dur" --timeout 10s --latency \
            -s "$LOAD_DIR/$VARIANTS_LUA" "$BASE" >"$WORK/wrk.txt" 2>&1 || true
    done
    declare -gA R=()
    parse_result "$label" "$(grep '^@@RESULT' "$WORK/wrk.txt" | tail -n 1)"
    local rps=${R[$label.rps]:-0}
    SAMPLES[$label]+="$rps "
    log "$(printf '%-16s %9s req/s  p50 %s ms  p99 %s ms  non-2xx %s' "$label" "$rps" \
        "${R[$label.p50_ms]:-?}" "${R[$label.p99_ms]:-?}" "${R[$label.non2xx]:-?}")"
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

n=${#LABELS[@]}
for ((round = 0; round < VARIANTS_ROUNDS; round++)); do
    for ((k = 0; k < n; k++)); do
        measure "${LABELS[$(((k + round) % n))]}"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : 0) }'; }
echo
echo "$VARIANTS_STORE, $VARIANTS_LUA, $VARIANTS_CONNECTIONS connections, $VARIANTS_ROUNDS rounds of $VARIANTS_DURATION, medians:"
first=
for label in "${LABELS[@]}"; do
    m=$(median <<<"${SAMPLES[$label]}")
    [[ -n $first ]] || first=$m
    printf '  %-16s %9s req/s  x%s of %s  [%s]\n' "$label" "$m" \
        "$(awk -v a="$m" -v b="$first" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')" "${LABELS[0]}" "${SAMPLES[$label]% }"
done
