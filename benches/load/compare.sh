#!/usr/bin/env bash
# The request path against its floors and against an earlier build, in one run, alternating.
#
#   benches/load/compare.sh                               # this tree vs. its floors
#   LOAD_BASELINE_REV=022e0a9 benches/load/compare.sh     # ... and vs. a rebuilt copy of that commit
#   LOAD_STORES=redb LOAD_ROUNDS=5 LOAD_DURATION=5s benches/load/compare.sh
#
# For each store it seeds one database, starts every contender at once — crm-server of this
# tree ("server"), the floors of `load-floor` (floor.rs) and, with LOAD_BASELINE_REV, the
# crm-server of that commit ("baseline") — and then runs every workload on every contender
# in turn, LOAD_ROUNDS times over, so that the machine's drift hits them all alike. The
# report gives the median req/s per contender and the ratios of the medians. Every request
# sends `Accept-Encoding: gzip` as browsers do, except the `identity` reference rows.
#
# Contenders per store:
#   redb:      server, floor (`load-floor --db`: JWT + raw redb read on the async thread),
#              store-floor (`load-floor --via-store`: through RedbStore, the old floor),
#              baseline. Each process reads its own copy of the seeded file (redb locks it).
#   postgres:  server, pg-floor (`load-floor --pg`: JWT + one prepared primary-key select),
#              baseline; all on the same fresh database.
#
# Workloads: GET one contact with gzip at each of LOAD_GET_CONNECTIONS, GET one contact with
# `identity` at the first of them (reference), list 100 tasks with gzip (server and baseline),
# and those of LOAD_MORE (server and baseline, at LOAD_LIST_CONNECTIONS): `search` (word
# prefix "joh", 25 a page) and `create` (POST a contact; each contender writes to its own
# copy of the store).
#
# Settings (environment): LOAD_DURATION=10s, LOAD_ROUNDS=3, LOAD_THREADS=2, LOAD_TIMEOUT=10s,
# LOAD_GET_CONNECTIONS="64 256", LOAD_LIST_CONNECTIONS=64, LOAD_STORES="redb postgres",
# LOAD_CONTACTS=20000, LOAD_TASKS=10000 (and LOAD_COMPANIES, LOAD_DEALS, LOAD_NOTES),
# LOAD_MORE="search create" (empty: none), LOAD_IDS=2000, LOAD_BASELINE_REV (unset: no baseline), LOAD_BASELINE_BIN (a crm-server
# binary built earlier from LOAD_BASELINE_REV: used instead of building it), LOAD_SKIP_BUILD=0,
# LOAD_OUTPUT=benches/load/compare-last-run.md, CRM_TEST_DATABASE_URL (PostgreSQL admin URL).
#
# The baseline is built from a detached `git worktree` of LOAD_BASELINE_REV under the work
# dir, into this tree's target directory (so that dependencies are shared), and its binary is
# copied out before this tree's build.

set -euo pipefail

LOG_TAG=compare
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOAD_DURATION=${LOAD_DURATION:-10s}
LOAD_ROUNDS=${LOAD_ROUNDS:-3}
LOAD_THREADS=${LOAD_THREADS:-2}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-10s}
LOAD_GET_CONNECTIONS=${LOAD_GET_CONNECTIONS:-64 256}
LOAD_LIST_CONNECTIONS=${LOAD_LIST_CONNECTIONS:-64}
LOAD_STORES=${LOAD_STORES:-redb postgres}
LOAD_MORE=${LOAD_MORE-search create}
LOAD_IDS=${LOAD_IDS:-2000}
LOAD_BASELINE_REV=${LOAD_BASELINE_REV:-}
LOAD_SKIP_BUILD=${LOAD_SKIP_BUILD:-0}
LOAD_OUTPUT=${LOAD_OUTPUT:-$LOAD_DIR/compare-last-run.md}
PG_ADMIN_URL=${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SEED=("${LOAD_CONTACTS:-20000}" "${LOAD_COMPANIES:-2000}" "${LOAD_DEALS:-4000}" "${LOAD_TASKS:-10000}" "${LOAD_NOTES:-20000}")
BCRYPT_COST=4 # logins are not measured here

require_tools curl jq awk git
ensure_wrk
raise_fd_limit

make_work_dir crm-compare
RAW=$WORK/raw
mkdir -p "$RAW"
init_secrets compare-admin@load.test

declare -A PIDS=()  # contender -> pid
declare -A BASES=() # contender -> http://127.0.0.1:port
declare -A TOKENS=() # contender -> access token
declare -A R=()
declare -A SAMPLES=() # "store|workload|contender" -> "rps rps ..."
ROW_ORDER=()          # "store|workload"
NOTES=()
BASE_DB= # the baseline's own PostgreSQL database, if any
declare -A IDS=() # contender -> its ids file, when it has a database of its own

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local c
    for c in "${!PIDS[@]}"; do stop_pid "${PIDS[$c]}"; done
    drop_pg_db
    drop_base_db
    if [[ -n $LOAD_BASELINE_REV && -d $WORK/baseline-src ]]; then
        git -C "$ROOT" worktree remove --force "$WORK/baseline-src" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
on_exit cleanup

# ---------------------------------------------------------------------------------------
# Build

cd "$ROOT"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
BASELINE_BIN=${LOAD_BASELINE_BIN:-}
if [[ -n $BASELINE_BIN ]]; then
    [[ -x $BASELINE_BIN ]] || die "no executable at LOAD_BASELINE_BIN=$BASELINE_BIN"
    BASELINE_COMMIT=${LOAD_BASELINE_REV:-$(basename "$BASELINE_BIN")}
elif [[ -n $LOAD_BASELINE_REV ]]; then
    BASELINE_COMMIT=$(git rev-parse --short "$LOAD_BASELINE_REV^{commit}")
    log "baseline: building crm-server at $BASELINE_COMMIT"
    git worktree add --detach "$WORK/baseline-src" "$BASELINE_COMMIT" >/dev/null 2>&1
    (cd "$WORK/baseline-src" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p crm-server)
    BASELINE_BIN=$WORK/crm-server-baseline
    cp "$TARGET_DIR/release/crm-server" "$BASELINE_BIN"
    LOAD_SKIP_BUILD=0 # the tree's own binary was just overwritten
fi
if [[ $LOAD_SKIP_BUILD != 1 ]]; then
    log "building: cargo build --release -p crm-server -p crm-benches --bin crm-server --bin load-floor"
    cargo build --release -p crm-server -p crm-benches --bin crm-server --bin load-floor
fi
SERVER_BIN=$TARGET_DIR/release/crm-server
FLOOR_BIN=$TARGET_DIR/release/load-floor
COMMIT=$(git rev-parse --short HEAD)
if [[ -n $(git status --porcelain | head -n 1) ]]; then COMMIT="$COMMIT (with uncommitted changes)"; fi

# ---------------------------------------------------------------------------------------
# Contenders

start_contender() { # name log command...: starts it on a free port (appended as --bind), waits for health
    local name=$1 logf=$2 port
    shift 2
    port=$(free_port)
    "$@" --bind "127.0.0.1:$port" >"$logf" 2>&1 &
    PIDS[$name]=$!
    BASES[$name]=http://127.0.0.1:$port
    local health=${BASES[$name]}/api/v1/health
    if [[ $name == *floor ]]; then health=${BASES[$name]}/health; fi
    wait_http "$health" "${PIDS[$name]}" "$logf" || die "$name did not come up: $(tail -n 3 "$logf")"
}

serve_cmd() { # bin: the crm-server serve command line (without --bind), rate limits out of the way
    echo "$1" serve "${STORE_FLAGS[@]}" --log-level warn --bcrypt-cost "$BCRYPT_COST" \
        --rate-user-per-minute "$RATE_BIG" --rate-address-per-minute "$RATE_BIG" \
        --rate-login-per-minute "$RATE_BIG" --rate-refresh-per-minute "$RATE_BIG" \
        --rate-reset-per-hour "$RATE_BIG"
}

login_to() { # contender: its own session (each server checks sessions in its own database)
    BASE=${BASES[$1]}
    login || die "login on $1 failed"
    TOKENS[$1]=$TOKEN
}

stop_all() {
    local c
    for c in "${!PIDS[@]}"; do stop_pid "${PIDS[$c]}"; done
    PIDS=()
    BASES=()
    TOKENS=()
}

collect_ids() { # [contender [file]]: up to LOAD_IDS of its contact ids (default: server's, into $WORK/ids)
    local who=${1:-server} file=${2:-$WORK/ids}
    BASE=${BASES[$who]}
    TOKEN=${TOKENS[$who]}
    (
        umask 077
        printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HEADER"
    )
    contact_ids "$file"
}

# run_one store workload contender script conns encoding: one wrk run; its req/s into SAMPLES
run_one() {
    local store=$1 workload=$2 who=$3 script=$4 conns=$5 enc=$6
    local threads=$LOAD_THREADS key="$store.$workload.$who.$RANDOM"
    if ((conns < threads)); then threads=$conns; fi
    local token=${TOKENS[$who]:-${TOKENS[server]}}
    LOAD_LUA_DIR=$LOAD_DIR LOAD_TOKEN=$token LOAD_WRK_THREADS=$threads LOAD_IDS_FILE=${IDS[$who]:-$WORK/ids} \
        LOAD_ACCEPT_ENCODING=$enc \
        wrk -t"$threads" -c"$conns" -d"$LOAD_DURATION" --timeout "$LOAD_TIMEOUT" --latency \
        -s "$LOAD_DIR/$script" "${BASES[$who]}" >"$RAW/$key.txt" 2>&1 || true
    local line
    line=$(grep '^@@RESULT' "$RAW/$key.txt" | tail -n 1 || true)
    if [[ -z $line ]]; then
        NOTES+=("$store $workload $who: wrk gave no result")
        return 0
    fi
    parse_result "$key" "$line"
    if [[ ${R[$key.non2xx]} != 0 || ${R[$key.sockerr]} != 0 ]]; then
        NOTES+=("$store $workload $who: non-2xx ${R[$key.non2xx]} (${R[$key.statuses]}), socket errors ${R[$key.sockerr]}")
    fi
    SAMPLES["$store|$workload|$who"]+="${R[$key.rps]} "
    log "$(printf '%-8s %-22s %-12s %9s req/s  p99 %7s ms' "$store" "$workload" "$who" "${R[$key.rps]}" "${R[$key.p99_ms]}")"
}

# rounds store "workload|script|conns|encoding|contender contender ..." ...
rounds() {
    local store=$1 r spec workload script conns enc who
    shift
    for spec in "$@"; do
        IFS='|' read -r workload _ _ _ _ <<<"$spec"
        ROW_ORDER+=("$store|$workload")
    done
    for ((r = 1; r <= LOAD_ROUNDS; r++)); do
        log "$store: round $r of $LOAD_ROUNDS"
        for spec in "$@"; do
            IFS='|' read -r workload script conns enc who <<<"$spec"
            for w in $who; do run_one "$store" "$workload" "$w" "$script" "$conns" "$enc"; done
        done
    done
}

more_specs() { # contenders: the workloads of LOAD_MORE
    local w
    for w in $LOAD_MORE; do
        case $w in
        search) echo "search q=joh, gzip, c=$LOAD_LIST_CONNECTIONS|search.lua|$LOAD_LIST_CONNECTIONS|gzip|$1" ;;
        create) echo "create contact, c=$LOAD_LIST_CONNECTIONS|create.lua|$LOAD_LIST_CONNECTIONS|gzip|$1" ;;
        *) die "LOAD_MORE: unknown workload $w (search, create)" ;;
        esac
    done
}

get_specs() { # contenders: the GET workloads
    local c first=
    for c in $LOAD_GET_CONNECTIONS; do
        echo "GET one, gzip, c=$c|get.lua|$c|gzip|$1"
        first=${first:-$c}
    done
    echo "GET one, identity, c=$first|get.lua|$first|identity|$1"
}

seed() { # server-bin
    seed_store "$1" "$WORK/seed.log" "$BCRYPT_COST" "${SEED[@]}" || die "seed failed: $(tail -n 3 "$WORK/seed.log")"
}

# ---------------------------------------------------------------------------------------
# redb

run_redb() {
    prepare_store redb "$WORK/redb-seed" crm_compare
    log "redb: seeding ${SEED[*]} (contacts companies deals tasks notes)"
    seed "$SERVER_BIN"
    local db
    db=$(find "$WORK/redb-seed" -maxdepth 2 -type f -name '*.redb' | head -n 1)
    [[ -n $db ]] || die "no redb file after seeding"
    local who
    for who in server floor store-floor; do
        mkdir -p "$WORK/redb-$who"
        cp "$db" "$WORK/redb-$who/$(basename "$db")"
    done
    if [[ -n $BASELINE_BIN ]]; then
        # An earlier build may not read this tree's file format: it seeds a file of its own,
        # alike, with its own binary (and gets its own ids below).
        log "redb: seeding the baseline's own file"
        STORE_FLAGS=(--data-dir "$WORK/redb-baseline")
        seed "$BASELINE_BIN"
    fi
    STORE_FLAGS=(--data-dir "$WORK/redb-server")
    # shellcheck disable=SC2046 # word splitting intended
    start_contender server "$WORK/server.log" env -u DATABASE_URL CRM_JWT_SECRET="$JWT_SECRET" $(serve_cmd "$SERVER_BIN")
    login_to server
    if [[ -n $BASELINE_BIN ]]; then
        STORE_FLAGS=(--data-dir "$WORK/redb-baseline")
        # shellcheck disable=SC2046
        start_contender baseline "$WORK/baseline.log" env -u DATABASE_URL CRM_JWT_SECRET="$JWT_SECRET" $(serve_cmd "$BASELINE_BIN")
        login_to baseline
    fi
    start_contender floor "$WORK/floor.log" env CRM_JWT_SECRET="$JWT_SECRET" "$FLOOR_BIN" --db "$WORK/redb-floor/$(basename "$db")"
    start_contender store-floor "$WORK/store-floor.log" env CRM_JWT_SECRET="$JWT_SECRET" "$FLOOR_BIN" --via-store "$WORK/redb-store-floor/$(basename "$db")"
    measure redb "floor store-floor"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

run_postgres() {
    if ! prepare_store postgres "" crm_compare; then
        NOTES+=("postgres not run: $STORE_ERROR")
        return 0
    fi
    log "postgres: seeding ${SEED[*]} into $PG_DB"
    seed "$SERVER_BIN"
    local url
    url=$(pg_url_for "$PG_DB")
    # shellcheck disable=SC2046
    start_contender server "$WORK/pg-server.log" env "DATABASE_URL=$url" CRM_JWT_SECRET="$JWT_SECRET" $(serve_cmd "$SERVER_BIN")
    login_to server
    if [[ -n $BASELINE_BIN ]]; then
        # An earlier build may not know this tree's migrations: it gets a database of its
        # own, seeded alike by its own binary.
        local own=$PG_DB
        create_pg_db crm_compare_base
        BASE_DB=$PG_DB
        PG_DB=$own
        local base_url
        base_url=$(pg_url_for "$BASE_DB")
        log "postgres: seeding the baseline's own database $BASE_DB"
        STORE_ENV=(-u CRM_DATA_DIR "DATABASE_URL=$base_url")
        seed "$BASELINE_BIN"
        # shellcheck disable=SC2046
        start_contender baseline "$WORK/pg-baseline.log" env "DATABASE_URL=$base_url" CRM_JWT_SECRET="$JWT_SECRET" $(serve_cmd "$BASELINE_BIN")
        login_to baseline
    fi
    start_contender pg-floor "$WORK/pg-floor.log" env CRM_JWT_SECRET="$JWT_SECRET" "$FLOOR_BIN" --pg "$url"
    measure postgres pg-floor
    drop_pg_db
    drop_base_db
}

measure() { # store floors: the rounds of every workload against the running contenders (server,
    # the floors named, the baseline if any), each cache warmed once; then stops them
    local store=$1 floors=$2 who specs
    collect_ids
    if [[ -n $BASELINE_BIN ]]; then
        collect_ids baseline "$WORK/ids-baseline"
        IDS[baseline]=$WORK/ids-baseline
    fi
    local servers="server${BASELINE_BIN:+ baseline}"
    mapfile -t specs < <(get_specs "server $floors${BASELINE_BIN:+ baseline}")
    specs+=("list 100 tasks, gzip, c=$LOAD_LIST_CONNECTIONS|list-tasks.lua|$LOAD_LIST_CONNECTIONS|gzip|$servers")
    mapfile -t -O "${#specs[@]}" specs < <(more_specs "$servers")
    for who in "${!BASES[@]}"; do run_one warmup get "$who" get.lua 64 gzip; done
    rounds "$store" "${specs[@]}"
    stop_all
    IDS=()
}

drop_base_db() {
    [[ -n $BASE_DB ]] || return 0
    local own=$PG_DB
    PG_DB=$BASE_DB
    drop_pg_db
    PG_DB=$own
    BASE_DB=
}

START=$(date +%s)
for store in $LOAD_STORES; do
    case $store in
    redb) run_redb ;;
    postgres) run_postgres ;;
    *) die "unknown store $store" ;;
    esac
done
ELAPSED=$(($(date +%s) - START))

# ---------------------------------------------------------------------------------------
# Report

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) printf "%.0f", a[(NR + 1) / 2]; else printf "%.0f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
med() { median <<<"${SAMPLES[$1]:-}"; }

{
    echo "# crm-server against its floors${BASELINE_BIN:+ and $BASELINE_COMMIT}"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`benches/load/compare.sh\` in ${ELAPSED} s; commit $COMMIT; $(nproc) cores; $WRK_VERSION on the same machine, $LOAD_THREADS threads, $LOAD_ROUNDS alternating rounds of ${LOAD_DURATION} per contender and workload; medians of the rounds' req/s (all samples in brackets)."
    echo "Seed: ${SEED[0]} contacts, ${SEED[1]} companies, ${SEED[2]} deals, ${SEED[3]} tasks, ${SEED[4]} notes."
    echo
    echo "| store | workload | server | floor | server / floor | store-floor | server / store-floor | baseline | server / baseline |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for row in "${ROW_ORDER[@]}"; do
        IFS='|' read -r store workload <<<"$row"
        s=$(med "$store|$workload|server")
        f=$(med "$store|$workload|floor")
        [[ -n $f ]] || f=$(med "$store|$workload|pg-floor")
        sf=$(med "$store|$workload|store-floor")
        b=$(med "$store|$workload|baseline")
        echo "| $store | $workload | $s [${SAMPLES[$store|$workload|server]:-}] | ${f:--} | $(ratio "$s" "$f") | ${sf:--} | $(ratio "$s" "$sf") | ${b:--} | $(ratio "$s" "$b") |"
    done
    echo
    echo "floor = \`load-floor --db\` on redb (JWT + raw read on the async thread), \`load-floor --pg\` on PostgreSQL (JWT + one prepared primary-key select); store-floor = \`load-floor --via-store\` (through \`RedbStore\`). The floors never compress."
    for n in "${NOTES[@]}"; do echo "- $n"; done
} >"$WORK/report.md"
publish_report "$LOAD_OUTPUT"
