#!/usr/bin/env bash
# Multi-instance load test: N crm-server processes (1, 2, 3) on one PostgreSQL database,
# `GET one contact` spread evenly over them (one wrk per instance, the connections split
# between them), with the shared rate limiter (the default with DATABASE_URL) and with
# --local-rate-limits, in the same run. Reports total requests/s per N and mode, the p99 of
# the slowest instance, and the rate limiter's database leases per request.
#
#   benches/load/instances.sh
#   INST_DURATION=20s INST_COUNTS="1 2 3 4" benches/load/instances.sh
#
# Settings (environment):
#   INST_DURATION=10s        length of every measured run
#   INST_WARMUP=2s           unreported run after the servers start
#   INST_CONNECTIONS=64      connections in total, split evenly between the instances
#   INST_COUNTS="1 2 3"      instance counts
#   INST_MODES="shared local"   rate limiter modes
#   INST_CONTACTS=2000       seeded contacts
#   INST_DB_POOL_SIZE=8      --db-pool-size of each instance
#   LOAD_SKIP_BUILD=0        1: use the binaries already built
#   INST_OUTPUT=benches/load/instances-last-run.md
#   CRM_TEST_DATABASE_URL    PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
#
# Needs cargo, curl, jq, psql and wrk; the helpers are lib.sh's. Non-2xx answers are
# counted (the statuses are in each wrk's raw output, kept with LOAD_KEEP=1).

set -euo pipefail

LOG_TAG=instances
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INST_DURATION=${INST_DURATION:-10s}
INST_WARMUP=${INST_WARMUP:-2s}
INST_CONNECTIONS=${INST_CONNECTIONS:-64}
INST_COUNTS=${INST_COUNTS:-1 2 3}
INST_MODES=${INST_MODES:-shared local}
INST_CONTACTS=${INST_CONTACTS:-2000}
INST_DB_POOL_SIZE=${INST_DB_POOL_SIZE:-8}
LOAD_SKIP_BUILD=${LOAD_SKIP_BUILD:-0}
INST_OUTPUT=${INST_OUTPUT:-$LOAD_DIR/instances-last-run.md}
PG_ADMIN_URL=${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
LOAD_IDS=1000

require_tools cargo curl jq psql
ensure_wrk
build_release -p crm-server
SERVER_BIN=$TARGET_DIR/release/crm-server
[[ -x $SERVER_BIN ]] || die "no crm-server binary at $SERVER_BIN"

make_work_dir crm-instances
RAW=$WORK/raw
mkdir -p "$RAW"
PIDS=()
stop_all() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    PIDS=()
}
cleanup() {
    trap - EXIT INT TERM
    stop_all
    drop_pg_db
    remove_work_dir "${LOAD_KEEP:-0}"
}
on_exit cleanup

init_secrets admin@instances.test
prepare_store postgres "" crm_instances || die "$STORE_ERROR"
log "seeding $INST_CONTACTS contacts"
seed_store "$SERVER_BIN" "$WORK/seed.log" 4 "$INST_CONTACTS" 200 0 0 0 ||
    die "seed failed: $(tail -n 3 "$WORK/seed.log")"

leases() {
    psql "$(pg_url_for "$PG_DB")" -qAtX -c \
        "SELECT COALESCE(sum(n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'crm_rate_limit'"
}

ROWS=()
# Modes alternate within each instance count, so that each pair shares the machine's state.
for n in $INST_COUNTS; do
    for mode in $INST_MODES; do
        extra=(--db-pool-size "$INST_DB_POOL_SIZE")
        if [[ $mode == local ]]; then extra+=(--local-rate-limits); fi
        bases=()
        for ((i = 0; i < n; i++)); do
            port=$(free_port)
            start_server "$SERVER_BIN" "$port" "$WORK/serve-$mode-$n-$i.log" 4 "${extra[@]}" ||
                die "crm-server did not come up: $(tail -n 3 "$WORK/serve-$mode-$n-$i.log")"
            PIDS+=("$SERVER_PID")
            bases+=("$BASE")
        done
        BASE=${bases[0]}
        login || die "login failed"
        [[ -s $WORK/ids ]] || contact_ids "$WORK/ids"
        per=$((INST_CONNECTIONS / n))
        threads=1
        if ((n == 1)); then threads=2; fi
        for phase in warmup measured; do
            dur=$INST_DURATION
            if [[ $phase == warmup ]]; then dur=$INST_WARMUP; fi
            before=$(leases)
            wrks=()
            for ((i = 0; i < n; i++)); do
                LOAD_LUA_DIR=$LOAD_DIR LOAD_TOKEN=$TOKEN LOAD_WRK_THREADS=$threads \
                    LOAD_IDS_FILE=$WORK/ids \
                    wrk -t"$threads" -c"$per" -d"$dur" --timeout 10s --latency \
                    -s "$LOAD_DIR/get.lua" "${bases[$i]}" >"$RAW/$mode-$n-$i-$phase.txt" 2>&1 &
                wrks+=($!)
            done
            for w in "${wrks[@]}"; do wait "$w" || true; done
        done
        sleep 1.5 # table statistics reach pg_stat_user_tables within about a second
        after=$(leases)
        total=0 requests=0 non2xx=0 p99=0
        for ((i = 0; i < n; i++)); do
            line=$(grep '^@@RESULT' "$RAW/$mode-$n-$i-measured.txt" | tail -n 1 || true)
            [[ -n $line ]] || die "wrk gave no result: $(tail -n 3 "$RAW/$mode-$n-$i-measured.txt")"
            declare -A R=()
            parse_result r "$line"
            total=$(awk -v a="$total" -v b="${R[r.rps]}" 'BEGIN { printf "%.0f", a + b }')
            requests=$((requests + ${R[r.requests]}))
            non2xx=$((non2xx + ${R[r.non2xx]}))
            p99=$(awk -v a="$p99" -v b="${R[r.p99_ms]}" 'BEGIN { print (b > a ? b : a) }')
            unset R
        done
        per_req=$(awk -v l="$((after - before))" -v r="$requests" 'BEGIN { printf "%.4f", (r > 0 ? l / r : 0) }')
        log "$(printf '%-6s n=%s  %8s req/s  p99 %7s ms  non-2xx %s  leases/request %s' \
            "$mode" "$n" "$total" "$p99" "$non2xx" "$per_req")"
        ROWS+=("$mode|$n|$total|$p99|$non2xx|$per_req")
        stop_all
    done
done

{
    echo "# Many instances: GET one contact over N crm-server processes on one PostgreSQL"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $(pg_version), $INST_CONNECTIONS connections in total, $INST_DURATION per run, $INST_CONTACTS contacts, rate limits raised out of the way (quota 10^9/min: leases of 64 tokens)."
    echo
    echo "| rate limiter | instances | requests/s (total) | p99 ms (slowest instance) | non-2xx | limiter DB leases per request |"
    echo "|---|---|---|---|---|---|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r mode n total p99 non2xx per_req <<<"$row"
        echo "| $mode | $n | $total | $p99 | $non2xx | $per_req |"
    done
} | tee "$INST_OUTPUT"
