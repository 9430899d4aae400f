#!/usr/bin/env bash
# HTTP load test of the standalone server (crm-server) on redb and on PostgreSQL, beside a
# floor measured in the same run: a minimal axum server (load-floor) that verifies the same
# JWT and reads one contact from the same redb file.
#
#   benches/load/run.sh                      # everything, default settings (about 5 minutes after the build)
#   LOAD_DURATION=30s LOAD_SIZE=5 benches/load/run.sh
#   LOAD_STORES=redb LOAD_MIXED_CONNECTIONS="64 1000" benches/load/run.sh
#
# Needs: cargo, curl, jq, wrk (installed with apt-get when missing and running as root),
# psql for the PostgreSQL part. Prints a markdown table and writes it to
# benches/load/last-run.md. See benches/load/README.md for what each workload does.
#
# Settings (environment):
#   LOAD_DURATION=10s            length of every measured run (wrk -d)
#   LOAD_WARMUP=3s               unreported GET run after each server start
#   LOAD_TIMEOUT=10s             wrk request timeout (slower answers count as timeouts)
#   LOAD_THREADS=2               wrk threads (never more than connections)
#   LOAD_CONNECTIONS=64          list, search, create, update
#   LOAD_GET_CONNECTIONS="64 256"   GET one contact, on crm-server and on the floor
#   LOAD_LOGIN_CONNECTIONS=16    login (bcrypt-bound)
#   LOAD_MIXED_CONNECTIONS="64 256 1000"   mixed reads/creates
#   LOAD_MIXED_WRITE_PCT=20      share of creates in the mixed workload
#   LOAD_HEALTH_CONNECTIONS=4    /health probe beside the largest mixed run (and alone)
#   LOAD_HEALTH_DELAY_MS=10      pause of each probe connection between requests
#   LOAD_SIZE=1                  seed size multiplier of 20k contacts, 2k companies,
#                                4k deals, 10k tasks, 20k notes; or set any of
#                                LOAD_CONTACTS LOAD_COMPANIES LOAD_DEALS LOAD_TASKS LOAD_NOTES
#   LOAD_IDS=2000                contact ids collected for GET / update / mixed
#   LOAD_STORES="redb postgres"  stores to test (the floor runs with redb)
#   LOAD_BCRYPT_COST=12          crm-server --bcrypt-cost (its default)
#   LOAD_DB_POOL_SIZE=           crm-server --db-pool-size (unset: the server's default)
#   LOAD_SEARCH_PREFIXES=        search prefixes (unset: 3-letter prefixes of seeded names)
#   LOAD_SERVER_ARGS=            extra arguments for `crm-server serve`
#   LOAD_SKIP_BUILD=0            1: use the binaries already built
#   LOAD_KEEP=0                  1: keep the work dir (server logs, raw wrk output)
#   LOAD_OUTPUT=benches/load/last-run.md
#   CRM_TEST_DATABASE_URL        PostgreSQL server for the fresh database
#                                (default postgres://postgres@127.0.0.1:5432/postgres)
#
# Helpers shared with soak.sh (the soak test) are in lib.sh.

set -euo pipefail

LOG_TAG=load
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOAD_DURATION=${LOAD_DURATION:-10s}
LOAD_WARMUP=${LOAD_WARMUP:-3s}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-10s}
LOAD_THREADS=${LOAD_THREADS:-2}
LOAD_CONNECTIONS=${LOAD_CONNECTIONS:-64}
LOAD_GET_CONNECTIONS=${LOAD_GET_CONNECTIONS:-64 256}
LOAD_LOGIN_CONNECTIONS=${LOAD_LOGIN_CONNECTIONS:-16}
LOAD_MIXED_CONNECTIONS=${LOAD_MIXED_CONNECTIONS:-64 256 1000}
LOAD_MIXED_WRITE_PCT=${LOAD_MIXED_WRITE_PCT:-20}
LOAD_HEALTH_CONNECTIONS=${LOAD_HEALTH_CONNECTIONS:-4}
LOAD_HEALTH_DELAY_MS=${LOAD_HEALTH_DELAY_MS:-10}
LOAD_SIZE=${LOAD_SIZE:-1}
LOAD_IDS=${LOAD_IDS:-2000}
LOAD_STORES=${LOAD_STORES:-redb postgres}
LOAD_BCRYPT_COST=${LOAD_BCRYPT_COST:-12}
LOAD_DB_POOL_SIZE=${LOAD_DB_POOL_SIZE:-}
LOAD_SEARCH_PREFIXES=${LOAD_SEARCH_PREFIXES:-}
LOAD_SERVER_ARGS=${LOAD_SERVER_ARGS:-}
LOAD_SKIP_BUILD=${LOAD_SKIP_BUILD:-0}
LOAD_KEEP=${LOAD_KEEP:-0}
LOAD_OUTPUT=${LOAD_OUTPUT:-$LOAD_DIR/last-run.md}
PG_ADMIN_URL=${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

seed_sizes LOAD "$LOAD_SIZE"

# ---------------------------------------------------------------------------------------
# Tools

require_tools curl jq awk
ensure_wrk
raise_fd_limit

# ---------------------------------------------------------------------------------------
# Build

build_release -p crm-server -p crm-benches --bins
SERVER_BIN=${LOAD_SERVER_BIN:-$TARGET_DIR/release/crm-server}
FLOOR_BIN=${LOAD_FLOOR_BIN:-$TARGET_DIR/release/load-floor}
[[ -x $SERVER_BIN ]] || die "no crm-server binary at $SERVER_BIN"
[[ -x $FLOOR_BIN ]] || die "no load-floor binary at $FLOOR_BIN"

# ---------------------------------------------------------------------------------------
# Work dir, secrets, cleanup

make_work_dir crm-load
RAW=$WORK/raw
mkdir -p "$RAW"
init_secrets load-admin@load.test

FLOOR_PID=
BG_PIDS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_pid "$SERVER_PID"
    stop_pid "$FLOOR_PID"
    drop_pg_db
    remove_work_dir "$LOAD_KEEP"
    exit "$rc"
}
on_exit cleanup

# ---------------------------------------------------------------------------------------
# Helpers

collect_ids() { # file: up to LOAD_IDS lines "<id> <version>"; also $WORK/names; prints how many
    contact_ids "$1" "$WORK/names"
    wc -l <"$1" | tr -d ' '
}

declare -A R=()   # results: R[<key>.<field>]
ROWS=()           # "store|workload|conns|key"
NOTES=()          # free-text notes for the report
SEED_ROWS=()      # "store|seconds"
HEALTH_ROWS=()    # "store|mixed conns|key"
FLOOR_KEYS=()     # "conns|key"
FAILED_STORES=()  # "store: why"
GLOBAL_PEAK_KB=0

# run_wrk key script conns url [duration] [pid to sample]: one wrk run, parsed into R.
run_wrk() {
    local key=$1 script=$2 conns=$3 url=$4 dur=${5:-$LOAD_DURATION} pid=${6:-}
    local threads=$LOAD_THREADS
    if ((conns < threads)); then threads=$conns; fi
    local out=$RAW/$key.txt stop=$RAW/$key.stop peakf=$RAW/$key.rss sampler=
    if [[ -n $pid ]]; then
        rss_peak_sampler "$pid" "$stop" "$peakf" &
        sampler=$!
    fi
    LOAD_LUA_DIR=$LOAD_DIR LOAD_TOKEN=$TOKEN LOAD_WRK_THREADS=$threads \
        LOAD_IDS_FILE=$WORK/ids LOAD_SEARCH_PREFIXES=$SEARCH_PREFIXES \
        LOAD_MIXED_WRITE_PCT=$LOAD_MIXED_WRITE_PCT LOAD_HEALTH_DELAY_MS=$LOAD_HEALTH_DELAY_MS \
        LOAD_LOGIN_BODY="$(cat "$LOGIN_JSON")" \
        wrk -t"$threads" -c"$conns" -d"$dur" --timeout "$LOAD_TIMEOUT" --latency \
        -s "$LOAD_DIR/$script" "$url" >"$out" 2>&1 || true
    if [[ -n $sampler ]]; then
        touch "$stop"
        wait "$sampler" 2>/dev/null || true
        local kb
        kb=$(cat "$peakf" 2>/dev/null || echo 0)
        R[$key.rss_kb]=$kb
        if ((kb > GLOBAL_PEAK_KB)); then GLOBAL_PEAK_KB=$kb; fi
    fi
    local line
    line=$(grep '^@@RESULT' "$out" | tail -n 1 || true)
    if [[ -z $line ]]; then
        R[$key.failed]="wrk gave no result: $(grep -v '^@@' "$out" | tail -n 3 | tr '\n' ' ')"
        log "$key: ${R[$key.failed]}"
        return 0
    fi
    parse_result "$key" "$line"
    log "$(printf '%-28s c=%-5s %9s req/s  p50 %7s ms  p95 %7s ms  p99 %7s ms  non-2xx %s  socket errors %s' \
        "$key" "$conns" "${R[$key.rps]}" "${R[$key.p50_ms]}" "${R[$key.p95_ms]}" "${R[$key.p99_ms]}" \
        "${R[$key.non2xx]}" "${R[$key.sockerr]}")"
}

# ---------------------------------------------------------------------------------------
# One store

SEARCH_PREFIXES=${LOAD_SEARCH_PREFIXES:-joh}
BASE=

run_store() { # store
    local store=$1
    local data_dir=$WORK/redb-data
    if ! prepare_store "$store" "$data_dir" crm_load; then
        FAILED_STORES+=("$store: $STORE_ERROR")
        return 0
    fi
    if [[ $store == postgres ]]; then R[postgres.server]=$(pg_version); fi

    # Seed.
    log "$store: seeding $SEED_CONTACTS contacts, $SEED_COMPANIES companies, $SEED_DEALS deals, $SEED_TASKS tasks, $SEED_NOTES notes"
    local t0 t1
    t0=$(date +%s.%N)
    if ! seed_store "$SERVER_BIN" "$WORK/$store-seed.log" "$LOAD_BCRYPT_COST" "$SEED_CONTACTS" \
        "$SEED_COMPANIES" "$SEED_DEALS" "$SEED_TASKS" "$SEED_NOTES"; then
        log "$store: seed failed; last lines:"
        tail -n 20 "$WORK/$store-seed.log" >&2
        FAILED_STORES+=("$store: \`crm-server seed\` failed: $(tail -n 1 "$WORK/$store-seed.log")")
        drop_pg_db
        return 0
    fi
    t1=$(date +%s.%N)
    SEED_ROWS+=("$store|$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')")

    # Serve.
    local port serve_log=$WORK/$store-serve.log
    port=$(free_port)
    local serve_args=()
    if [[ -n $LOAD_DB_POOL_SIZE ]]; then serve_args+=(--db-pool-size "$LOAD_DB_POOL_SIZE"); fi
    # shellcheck disable=SC2206 # word splitting intended
    serve_args+=($LOAD_SERVER_ARGS)
    log "$store: starting crm-server on 127.0.0.1:$port"
    if ! start_server "$SERVER_BIN" "$port" "$serve_log" "$LOAD_BCRYPT_COST" "${serve_args[@]}"; then
        FAILED_STORES+=("$store: crm-server did not come up: $(tail -n 1 "$serve_log")")
        drop_pg_db
        return 0
    fi
    login || die "$store: login as the seeded admin failed"
    local n
    n=$(collect_ids "$WORK/ids")
    log "$store: collected $n contact ids"
    [[ $n -gt 0 ]] || die "$store: the contact list is empty after seeding"
    if [[ -z $LOAD_SEARCH_PREFIXES ]]; then
        SEARCH_PREFIXES=$(tr '[:upper:]' '[:lower:]' <"$WORK/names" | grep -E '^[a-z]{3}' | cut -c1-3 |
            sort | uniq -c | sort -rn | awk 'NR <= 8 { print $2 }' | tr '\n' ' ' | sed 's/ $//' || true)
        [[ -n $SEARCH_PREFIXES ]] || SEARCH_PREFIXES=joh
    fi
    local p hits hitlist=()
    for p in $SEARCH_PREFIXES; do
        hits=$(api_get "/api/v1/contacts?q=$p&limit=25" | jq '.data | length' || echo '?')
        hitlist+=("$p:$hits")
    done
    R[$store.search_hits]="${hitlist[*]}"
    log "$store: search prefixes (first-page hits of 25): ${hitlist[*]}"

    local crashed=""
    # check_alive key: notes a crash and stops this store's runs
    check_alive() {
        if alive "$SERVER_PID"; then return 0; fi
        local status=0
        wait "$SERVER_PID" 2>/dev/null || status=$?
        crashed="crm-server ($store) exited (status $status) during $1; last log lines: $(tail -n 5 "$serve_log" | tr '\n' ' ')"
        log "$crashed"
        NOTES+=("$crashed")
        SERVER_PID=
        return 1
    }

    # Idle /health, then the warm-up.
    run_wrk "$store.health-idle" health.lua "$LOAD_HEALTH_CONNECTIONS" "$BASE" "$LOAD_DURATION" "$SERVER_PID"
    ROWS+=("$store|health (idle, ${LOAD_HEALTH_DELAY_MS} ms pauses)|$LOAD_HEALTH_CONNECTIONS|$store.health-idle")
    run_wrk "$store.warmup" get.lua 64 "$BASE" "$LOAD_WARMUP"

    local c workloads=()
    for c in $LOAD_GET_CONNECTIONS; do workloads+=("get|GET one contact|get.lua|$c"); done
    workloads+=("list|list 25 contacts|list.lua|$LOAD_CONNECTIONS")
    workloads+=("search|search (q=prefix, limit 25)|search.lua|$LOAD_CONNECTIONS")
    workloads+=("create|create contact|create.lua|$LOAD_CONNECTIONS")
    workloads+=("update|update contact (If-Match)|update.lua|$LOAD_CONNECTIONS")
    workloads+=("login|login (bcrypt cost $LOAD_BCRYPT_COST)|login.lua|$LOAD_LOGIN_CONNECTIONS")
    local max_mixed=0
    for c in $LOAD_MIXED_CONNECTIONS; do if ((c > max_mixed)); then max_mixed=$c; fi; done
    for c in $LOAD_MIXED_CONNECTIONS; do
        workloads+=("mixed|mixed $((100 - LOAD_MIXED_WRITE_PCT))% GET / $LOAD_MIXED_WRITE_PCT% create|mixed.lua|$c")
    done

    local w name label script key
    for w in "${workloads[@]}"; do
        IFS='|' read -r name label script c <<<"$w"
        key=$store.$name.$c
        if [[ -n $crashed ]]; then
            R[$key.failed]="not run: crm-server had exited"
            ROWS+=("$store|$label|$c|$key")
            continue
        fi
        if ! login; then
            R[$key.failed]="not run: login failed"
            ROWS+=("$store|$label|$c|$key")
            check_alive "$key" || true
            continue
        fi
        if [[ $name == update ]]; then
            # Fresh versions (earlier runs do not update, but be exact).
            collect_ids "$WORK/ids" >/dev/null
            if (($(wc -l <"$WORK/ids") < 4 * c)); then
                NOTES+=("$key: only $(wc -l <"$WORK/ids") contacts for $c connections: expect refresh GETs (raise LOAD_IDS)")
            fi
        fi
        if [[ $name == mixed && $c == "$max_mixed" ]]; then
            # The light /health probe beside the heaviest mixed run.
            run_wrk "$store.health-under.$c" health.lua "$LOAD_HEALTH_CONNECTIONS" "$BASE" &
            local probe=$!
            BG_PIDS+=("$probe")
            run_wrk "$key" "$script" "$c" "$BASE" "$LOAD_DURATION" "$SERVER_PID"
            wait "$probe" || true
            BG_PIDS=()
            # The probe ran in a subshell: read its result back.
            local line hk=$store.health-under.$c
            line=$(grep '^@@RESULT' "$RAW/$hk.txt" | tail -n 1 || true)
            if [[ -n $line ]]; then
                parse_result "$hk" "$line"
            else
                R[$hk.failed]="wrk gave no result"
            fi
            HEALTH_ROWS+=("$store|$c|$hk")
        else
            run_wrk "$key" "$script" "$c" "$BASE" "$LOAD_DURATION" "$SERVER_PID"
        fi
        ROWS+=("$store|$label|$c|$key")
        check_alive "$key" || true
    done

    local warnings
    warnings=$(grep -ciE 'warn|error' "$serve_log" || true)
    if [[ $warnings -gt 0 ]]; then
        NOTES+=("crm-server ($store) logged $warnings warning/error lines; e.g.: $(grep -iE 'warn|error' "$serve_log" | head -n 3 | cut -c1-300 | tr '\n' ' ')")
    fi

    # Floor: on the same redb file, once crm-server has let go of it.
    if [[ $store == redb && -z $crashed ]] && ! login; then
        NOTES+=("floor: login failed before it (the floor uses the last token)")
    fi
    if [[ -n $SERVER_PID ]]; then
        stop_pid "$SERVER_PID"
        SERVER_PID=
    fi
    if [[ $store == redb ]]; then
        run_floor "$data_dir"
    fi
    drop_pg_db
}

run_floor() { # data dir
    local dir=$1 db
    db=$(find "$dir" -maxdepth 2 -type f -name '*.redb' | head -n 1)
    if [[ -z $db ]]; then
        db=$(find "$dir" -maxdepth 1 -type f | head -n 1)
    fi
    if [[ -z $db ]]; then
        NOTES+=("floor: no redb file found in the data dir")
        return 0
    fi
    local port floor_log=$WORK/floor.log
    port=$(free_port)
    BASE=http://127.0.0.1:$port
    log "floor: load-floor on $BASE ($(basename "$db"))"
    CRM_JWT_SECRET="$JWT_SECRET" "$FLOOR_BIN" --db "$db" --bind "127.0.0.1:$port" >"$floor_log" 2>&1 &
    FLOOR_PID=$!
    if ! wait_http "$BASE/health" "$FLOOR_PID" "$floor_log"; then
        NOTES+=("floor: load-floor did not come up: $(tail -n 1 "$floor_log")")
        stop_pid "$FLOOR_PID"
        FLOOR_PID=
        return 0
    fi
    run_wrk "floor.warmup" get.lua 64 "$BASE" "$LOAD_WARMUP"
    local c
    for c in $LOAD_GET_CONNECTIONS; do
        run_wrk "floor.get.$c" get.lua "$c" "$BASE" "$LOAD_DURATION" "$FLOOR_PID"
        FLOOR_KEYS+=("$c|floor.get.$c")
    done
    stop_pid "$FLOOR_PID"
    FLOOR_PID=
}

# ---------------------------------------------------------------------------------------
# Run

START=$(date +%s)
log "stores: $LOAD_STORES; $LOAD_DURATION per run; wrk $LOAD_THREADS threads; timeout $LOAD_TIMEOUT"
for store in $LOAD_STORES; do
    run_store "$store"
done
ELAPSED=$(($(date +%s) - START))

# ---------------------------------------------------------------------------------------
# Report

val() { # key field [default]
    local v=${R[$1.$2]:-}
    if [[ -z $v ]]; then v=${3:--}; fi
    printf '%s' "$v"
}
mib() { awk -v k="${1:-0}" 'BEGIN { if (k > 0) printf "%.0f", k / 1024; else printf "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
rps() { awk -v r="${1:-}" 'BEGIN { if (r == "" || r == "-") printf "-"; else printf "%.0f", r }'; }

row_notes() { # key
    local key=$1 notes=()
    if [[ -n ${R[$key.failed]:-} ]]; then notes+=("${R[$key.failed]}"); fi
    if [[ ${R[$key.non2xx]:-0} != 0 ]]; then notes+=("statuses ${R[$key.statuses]}"); fi
    if [[ ${R[$key.sockerr]:-0} != 0 ]]; then
        notes+=("connect/read/write/timeout ${R[$key.connect]}/${R[$key.read]}/${R[$key.write]}/${R[$key.timeout]}")
    fi
    local k
    while read -r k; do
        if [[ -n $k ]]; then notes+=("${k#"$key.extra."} ${R[$k]}"); fi
    done < <(printf '%s\n' "${!R[@]}" | grep -F "$key.extra." | sort || true)
    local IFS=';'
    printf '%s' "${notes[*]:-}" | sed 's/;/; /g'
}

{
    echo "# HTTP load test: crm-server"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`benches/load/run.sh\` in ${ELAPSED} s."
    echo
    machine_line
    echo "- Load generator $WRK_VERSION on the same machine, $LOAD_THREADS threads, ${LOAD_DURATION} per run after a ${LOAD_WARMUP} warm-up per server, timeout $LOAD_TIMEOUT."
    echo "- Seed per store: $SEED_CONTACTS contacts, $SEED_COMPANIES companies, $SEED_DEALS deals, $SEED_TASKS tasks, $SEED_NOTES notes (\`crm-server seed\`); GET/update/mixed pick among $LOAD_IDS collected contact ids."
    echo "- crm-server: rate limits raised to $RATE_BIG per period, bcrypt cost $LOAD_BCRYPT_COST, log level warn, db pool ${LOAD_DB_POOL_SIZE:-server default}${LOAD_SERVER_ARGS:+, extra args \`$LOAD_SERVER_ARGS\`}; PostgreSQL ${R[postgres.server]:-not run} on the same machine."
    echo "- Latencies in ms (wrk, closed loop: each connection sends its next request when the previous answer arrived). Non-2xx counts every status outside 200-299; socket errors are connect + read + write + timeout."
    echo
    echo "| store | workload | conns | req/s | p50 ms | p95 ms | p99 ms | non-2xx | socket errors | peak RSS MiB | notes |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r store label c key <<<"$row"
        echo "| $store | $label | $c | $(rps "$(val "$key" rps)") | $(val "$key" p50_ms) | $(val "$key" p95_ms) | $(val "$key" p99_ms) | $(val "$key" non2xx) | $(val "$key" sockerr) | $(mib "$(val "$key" rss_kb 0)") | $(row_notes "$key") |"
    done
    echo
    echo "## /health under the heaviest mixed load"
    echo
    if ((${#HEALTH_ROWS[@]} == 0)); then
        echo "Not measured."
    else
        echo "A second wrk, $LOAD_HEALTH_CONNECTIONS connections pausing ${LOAD_HEALTH_DELAY_MS} ms between requests, on \`/api/v1/health\` during the mixed run."
        echo
        echo "| store | mixed conns | health req/s | health p50 ms | health p99 ms | health max ms | idle health p99 ms | non-2xx | socket errors | peak RSS MiB (mixed run) |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        for row in "${HEALTH_ROWS[@]}"; do
            IFS='|' read -r store c hk <<<"$row"
            echo "| $store | $c | $(rps "$(val "$hk" rps)") | $(val "$hk" p50_ms) | $(val "$hk" p99_ms) | $(val "$hk" max_ms) | $(val "$store.health-idle" p99_ms) | $(val "$hk" non2xx) | $(val "$hk" sockerr) | $(mib "$(val "$store.mixed.$c" rss_kb 0)") |"
        done
    fi
    echo
    echo "## Floor: GET one contact"
    echo
    if ((${#FLOOR_KEYS[@]} == 0)); then
        echo "Not measured (the floor runs with the redb store)."
    else
        echo "\`load-floor --db\`: one axum handler that verifies the HS256 JWT (\`jsonwebtoken\`), opens a redb read transaction on the async thread and answers the contact's stored bytes as JSON (no project code), on the redb file crm-server just used. Every request sends \`Accept-Encoding: ${LOAD_ACCEPT_ENCODING:-gzip}\`. Ratio = crm-server req/s / floor req/s (1.00 = crm-server as fast as the floor; the PostgreSQL column compares with the same redb floor)."
        echo
        echo "| conns | floor req/s | floor p50 / p99 ms | crm-server redb req/s | redb / floor | crm-server postgres req/s | postgres / floor |"
        echo "|---:|---:|---:|---:|---:|---:|---:|"
        for row in "${FLOOR_KEYS[@]}"; do
            IFS='|' read -r c fk <<<"$row"
            f=$(val "$fk" rps)
            a=$(val "redb.get.$c" rps)
            b=$(val "postgres.get.$c" rps)
            echo "| $c | $(rps "$f") | $(val "$fk" p50_ms) / $(val "$fk" p99_ms) | $(rps "$a") | $(ratio "$a" "$f") | $(rps "$b") | $(ratio "$b" "$f") |"
        done
    fi
    echo
    echo "## Other"
    echo
    for row in "${SEED_ROWS[@]}"; do
        IFS='|' read -r store secs <<<"$row"
        echo "- Seeding $store took $secs s."
    done
    for store in $LOAD_STORES; do
        if [[ -n ${R[$store.search_hits]:-} ]]; then
            echo "- Search prefixes on $store (results on the first page of 25): ${R[$store.search_hits]}."
        fi
    done
    echo "- Peak crm-server RSS over all runs: $(mib "$GLOBAL_PEAK_KB") MiB (VmRSS sampled every 0.2 s)."
    for n in "${FAILED_STORES[@]}"; do echo "- Not run: $n"; done
    for n in "${NOTES[@]}"; do echo "- $n"; done
} >"$WORK/report.md"
publish_report "$LOAD_OUTPUT"
