#!/usr/bin/env bash
# Soak test of the standalone server (crm-server): a mixed read/write load held for minutes,
# watching for errors, memory growth and lost or phantom records.
#
#   benches/load/soak.sh                                  # redb, 1000 connections, 10 minutes
#   SOAK_STORE=postgres benches/load/soak.sh
#   SOAK_DURATION=60 SOAK_SLICE=20 SOAK_CONNECTIONS=200 benches/load/soak.sh   # a short trial
#
# Seeds a fresh store with `crm-server seed`, starts `crm-server serve` on a free loopback
# port (rate limits raised out of the way, log level warn), then runs wrk (soak.lua: GET one
# random contact / POST a new contact) in consecutive slices, logging in again before each
# (access tokens live 15 minutes), while sampling the server's RSS. Every contact id a 201
# acknowledges is recorded. Afterwards it walks every contact page by page and checks that
# each acknowledged contact is there and that there are no others, checks /health and /ready
# and stops the server with SIGTERM (exit status 0 expected).
#
# Verdicts (the exit status is 1 when any fails):
#   no unexpected errors   no non-2xx answer and no socket error (connect, read, write,
#                          timeout) in any slice; every login answered
#   memory flat            RSS after the warm-up (the later of the end of the first slice and
#                          20% of the load) against the largest RSS of the last third of the
#                          load: at most SOAK_MEM_GROWTH_PCT % or SOAK_MEM_GROWTH_MIB MiB
#                          more, whichever is larger
#   data intact            every acknowledged contact present, every seeded contact present,
#                          no contact listed twice, total = seeded + acknowledged
#   clean shutdown         /api/v1/health and /api/v1/ready answer 200 after the load, and
#                          SIGTERM stops the server with exit status 0
#
# Needs: curl, jq, awk, sort, comm, wrk (installed with apt-get when missing and running as
# root), psql for PostgreSQL; cargo only if the crm-server binary is missing (then it runs
# `cargo build --release -p crm-server`). Prints a markdown report and writes it to
# benches/load/soak-last-run.md. See benches/load/README.md.
#
# Settings (environment):
#   SOAK_STORE=redb              redb (fresh temp data dir) or postgres (fresh database on
#                                CRM_TEST_DATABASE_URL, dropped afterwards)
#   SOAK_DURATION=600            seconds of load, in total
#   SOAK_SLICE=30                seconds per wrk run (the last one may be shorter)
#   SOAK_CONNECTIONS=1000        wrk connections
#   SOAK_THREADS=2               wrk threads (never more than connections)
#   SOAK_WRITE_PCT=20            share of POST (create contact); the rest GET one contact
#   SOAK_DRAIN=2                 seconds at the end of each slice without new POSTs (they
#                                become GETs), so that no create is in flight when wrk stops
#                                and drops its connections (0: none)
#   SOAK_TIMEOUT=10s             wrk request timeout (slower answers count as timeouts)
#   SOAK_RSS_INTERVAL=5          seconds between RSS samples
#   SOAK_MEM_GROWTH_PCT=10       memory verdict: allowed growth, percent of the warm RSS ...
#   SOAK_MEM_GROWTH_MIB=16       ... or MiB, whichever is larger
#   SOAK_SIZE=1                  seed size multiplier of 20k contacts, 2k companies, 4k deals,
#                                10k tasks, 20k notes; or set any of SOAK_CONTACTS
#                                SOAK_COMPANIES SOAK_DEALS SOAK_TASKS SOAK_NOTES
#   SOAK_BCRYPT_COST=12          crm-server --bcrypt-cost (its default)
#   SOAK_DB_POOL_SIZE=           crm-server --db-pool-size (unset: the server's default)
#   SOAK_SERVER_ARGS=            extra arguments for `crm-server serve`
#   SOAK_SERVER_BIN=             the crm-server binary (default: <target dir>/release/crm-server)
#   SOAK_KEEP=0                  1: keep the work dir (server log, raw wrk output, id lists)
#   SOAK_OUTPUT=benches/load/soak-last-run.md
#   CRM_TEST_DATABASE_URL        PostgreSQL server for the fresh database
#                                (default postgres://postgres@127.0.0.1:5432/postgres)
#
# The JWT secret, the admin's password and the access tokens are generated per run and never
# printed. Helpers shared with run.sh are in lib.sh.

set -euo pipefail
export LC_ALL=C # sort, comm and join must agree; '.' as the decimal point

LOG_TAG=soak
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

secs_of() { # "600", "600s" -> 600
    local v=${1%s}
    [[ $v =~ ^[0-9]+$ ]] || die "not a number of seconds: $1"
    echo "$v"
}

SOAK_STORE=${SOAK_STORE:-redb}
SOAK_DURATION=$(secs_of "${SOAK_DURATION:-600}")
SOAK_SLICE=$(secs_of "${SOAK_SLICE:-30}")
SOAK_CONNECTIONS=${SOAK_CONNECTIONS:-1000}
SOAK_THREADS=${SOAK_THREADS:-2}
SOAK_WRITE_PCT=${SOAK_WRITE_PCT:-20}
SOAK_DRAIN=$(secs_of "${SOAK_DRAIN:-2}")
SOAK_TIMEOUT=${SOAK_TIMEOUT:-10s}
SOAK_RSS_INTERVAL=$(secs_of "${SOAK_RSS_INTERVAL:-5}")
SOAK_MEM_GROWTH_PCT=${SOAK_MEM_GROWTH_PCT:-10}
SOAK_MEM_GROWTH_MIB=${SOAK_MEM_GROWTH_MIB:-16}
SOAK_SIZE=${SOAK_SIZE:-1}
SOAK_BCRYPT_COST=${SOAK_BCRYPT_COST:-12}
SOAK_DB_POOL_SIZE=${SOAK_DB_POOL_SIZE:-}
SOAK_SERVER_ARGS=${SOAK_SERVER_ARGS:-}
SOAK_SERVER_BIN=${SOAK_SERVER_BIN:-}
SOAK_KEEP=${SOAK_KEEP:-0}
SOAK_OUTPUT=${SOAK_OUTPUT:-$LOAD_DIR/soak-last-run.md}
PG_ADMIN_URL=${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

case $SOAK_STORE in redb | postgres) ;; *) die "SOAK_STORE must be redb or postgres, not $SOAK_STORE" ;; esac
((SOAK_DURATION > 0 && SOAK_SLICE > 0)) || die "SOAK_DURATION and SOAK_SLICE must be positive"
[[ $SOAK_CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "SOAK_CONNECTIONS must be a positive number"
if ! [[ $SOAK_WRITE_PCT =~ ^[0-9]+$ ]] || ((SOAK_WRITE_PCT > 100)); then die "SOAK_WRITE_PCT must be 0-100"; fi

seed_sizes SOAK "$SOAK_SIZE"
((SEED_CONTACTS > 0)) || die "the GETs need seeded contacts (SOAK_CONTACTS > 0)"

# ---------------------------------------------------------------------------------------
# Tools and binary

require_tools curl jq awk sort comm join
ensure_wrk
raise_fd_limit

cd "$ROOT"
if [[ -z $SOAK_SERVER_BIN ]]; then
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    if command -v cargo >/dev/null; then
        target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory) || target_dir=$ROOT/target
    fi
    SOAK_SERVER_BIN=$target_dir/release/crm-server
    if [[ ! -x $SOAK_SERVER_BIN ]]; then
        require_tools cargo
        log "no crm-server binary: cargo build --release -p crm-server"
        cargo build --release -p crm-server
    fi
fi
[[ -x $SOAK_SERVER_BIN ]] || die "no crm-server binary at $SOAK_SERVER_BIN"

# ---------------------------------------------------------------------------------------
# Work dir, secrets, cleanup

make_work_dir crm-soak
RAW=$WORK/raw         # wrk output per slice
CREATED=$WORK/created # soak.lua: ids acknowledged by a 201, one file per slice and thread
CHECK=$WORK/check     # id lists of the data check
mkdir -p "$RAW" "$CREATED" "$CHECK"
init_secrets soak-admin@soak.test

WRK_PID=
SAMPLER_PID=
SAMPLER_STOP=$WORK/rss.stop
RSS_FILE=$WORK/rss.txt # "<seconds since the load started> <kB> <phase>"
PHASE_FILE=$WORK/phase

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WRK_PID ]]; then
        kill "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    if [[ -n $SAMPLER_PID ]]; then
        touch "$SAMPLER_STOP"
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    stop_pid "$SERVER_PID"
    drop_pg_db
    remove_work_dir "$SOAK_KEEP"
    exit "$rc"
}
on_exit cleanup

# ---------------------------------------------------------------------------------------
# Helpers

login_retry() { # up to 3 attempts
    local i
    for i in 1 2 3; do
        if login; then return 0; fi
        log "login failed (attempt $i)"
        sleep 1
    done
    return 1
}

# walk_contacts out: every contact, page by page (limit 100), as "<id>\t<title>" lines.
# Logs in again every 500 pages. Returns 1 if a page fails.
walk_contacts() {
    local out=$1 cursor="" pages=0 lines=()
    : >"$out"
    while true; do
        local args=(--get --data-urlencode "limit=100")
        if [[ -n $cursor ]]; then args+=(--data-urlencode "cursor=$cursor"); fi
        mapfile -t lines < <(curl -fsS --max-time 60 -H @"$AUTH_HEADER" "${args[@]}" "$BASE/api/v1/contacts" |
            jq -r '(.next_cursor // ""), (.data[] | "\(.id)\t\(.title // "" | gsub("[\t\r\n]"; " "))")')
        if ((${#lines[@]} == 0)); then
            log "walk: page $((pages + 1)) failed"
            return 1
        fi
        cursor=${lines[0]}
        if ((${#lines[@]} > 1)); then printf '%s\n' "${lines[@]:1}" >>"$out"; fi
        pages=$((pages + 1))
        if ((pages % 500 == 0)); then
            log "walk: $pages pages, $(wc -l <"$out") contacts"
            login_retry || return 1
        fi
        [[ -n $cursor ]] || break
    done
    WALK_PAGES=$pages
}

count_lines() { if [[ -s $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
rps() { awk -v r="${1:-}" 'BEGIN { if (r == "" || r == "-") printf "-"; else printf "%.0f", r }'; }

declare -A R=() # results: R[slice.<n>.<field>]
NOTES=()        # free-text notes for the report

# ---------------------------------------------------------------------------------------
# Seed, serve

START=$(date +%s)
log "store $SOAK_STORE; $SOAK_DURATION s of load in $SOAK_SLICE s slices; $SOAK_CONNECTIONS connections, $SOAK_WRITE_PCT% creates"
if ! prepare_store "$SOAK_STORE" "$WORK/redb-data" crm_soak; then die "$SOAK_STORE: $STORE_ERROR"; fi
PG_VERSION=
if [[ $SOAK_STORE == postgres ]]; then PG_VERSION=$(pg_version); fi

log "seeding $SEED_CONTACTS contacts, $SEED_COMPANIES companies, $SEED_DEALS deals, $SEED_TASKS tasks, $SEED_NOTES notes"
t0=$(now_us)
if ! seed_store "$SOAK_SERVER_BIN" "$WORK/seed.log" "$SOAK_BCRYPT_COST" "$SEED_CONTACTS" \
    "$SEED_COMPANIES" "$SEED_DEALS" "$SEED_TASKS" "$SEED_NOTES"; then
    tail -n 20 "$WORK/seed.log" >&2
    die "crm-server seed failed"
fi
SEED_SECS=$(awk -v d="$(($(now_us) - t0))" 'BEGIN { printf "%.1f", d / 1e6 }')

SERVE_LOG=$WORK/serve.log
serve_args=()
if [[ -n $SOAK_DB_POOL_SIZE ]]; then serve_args+=(--db-pool-size "$SOAK_DB_POOL_SIZE"); fi
# shellcheck disable=SC2206 # word splitting intended
serve_args+=($SOAK_SERVER_ARGS)
port=$(free_port)
log "starting crm-server on 127.0.0.1:$port"
start_server "$SOAK_SERVER_BIN" "$port" "$SERVE_LOG" "$SOAK_BCRYPT_COST" "${serve_args[@]}" ||
    die "crm-server did not come up: $(tail -n 1 "$SERVE_LOG")"
login_retry || die "login as the seeded admin failed"

log "walking the seeded contacts"
walk_contacts "$CHECK/before.tsv" || die "could not list the seeded contacts"
cut -f1 "$CHECK/before.tsv" | sort >"$CHECK/before.all"
sort -u "$CHECK/before.all" >"$CHECK/seeded.ids"
SEEDED_N=$(count_lines "$CHECK/seeded.ids")
BEFORE_DUPS=$(($(count_lines "$CHECK/before.all") - SEEDED_N))
log "$SEEDED_N contacts before the load"
((SEEDED_N > 0)) || die "no contacts after seeding"
if [[ $SEEDED_N != "$SEED_CONTACTS" ]]; then
    NOTES+=("the store lists $SEEDED_N contacts after seeding $SEED_CONTACTS")
fi
cp "$CHECK/seeded.ids" "$WORK/ids" # the GETs pick among all seeded contacts

# ---------------------------------------------------------------------------------------
# Load, in slices

threads=$SOAK_THREADS
if ((SOAK_CONNECTIONS < threads)); then threads=$SOAK_CONNECTIONS; fi

LOAD_T0=$(now_us)
echo load >"$PHASE_FILE"
rss_series_sampler "$SERVER_PID" "$SAMPLER_STOP" "$RSS_FILE" "$SOAK_RSS_INTERVAL" "$LOAD_T0" "$PHASE_FILE" &
SAMPLER_PID=$!

SLICES=() # slice numbers run
LOGIN_FAILURES=0
SERVER_DIED=
FIRST_SLICE_END=
remaining=$SOAK_DURATION
slice=0
created_total=0
while ((remaining > 0)); do
    slice=$((slice + 1))
    dur=$SOAK_SLICE
    if ((dur > remaining)); then dur=$remaining; fi
    remaining=$((remaining - dur))
    key=slice.$slice
    if ! login_retry; then
        LOGIN_FAILURES=$((LOGIN_FAILURES + 1))
        NOTES+=("slice $slice: login failed 3 times; the load stopped there")
        if ! alive "$SERVER_PID"; then
            status=0
            wait "$SERVER_PID" 2>/dev/null || status=$?
            SERVER_DIED="crm-server exited (status $status) before slice $slice; last log lines: $(tail -n 5 "$SERVE_LOG" | tr '\n' ' ')"
            SERVER_PID=
        fi
        break
    fi
    out=$RAW/slice-$slice.txt
    LOAD_LUA_DIR=$LOAD_DIR LOAD_TOKEN=$TOKEN LOAD_IDS_FILE=$WORK/ids \
        SOAK_WRITE_PCT=$SOAK_WRITE_PCT SOAK_SLICE_NO=$slice SOAK_SLICE_SECS=$dur \
        SOAK_DRAIN_SECS=$SOAK_DRAIN SOAK_CREATED_DIR=$CREATED \
        wrk -t"$threads" -c"$SOAK_CONNECTIONS" -d"${dur}s" --timeout "$SOAK_TIMEOUT" --latency \
        -s "$LOAD_DIR/soak.lua" "$BASE" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || true
    WRK_PID=
    now=$(now_us)
    R[$key.elapsed]=$(awk -v d="$((now - LOAD_T0))" 'BEGIN { printf "%.1f", d / 1e6 }')
    R[$key.secs]=$dur
    R[$key.rss_kb]=$(rss_kb "$SERVER_PID")
    if [[ -z $FIRST_SLICE_END ]]; then FIRST_SLICE_END=${R[$key.elapsed]}; fi
    SLICES+=("$slice")
    line=$(grep '^@@RESULT' "$out" | tail -n 1 || true)
    if [[ -z $line ]]; then
        R[$key.failed]="wrk gave no result: $(grep -v '^@@' "$out" | tail -n 3 | tr '\n' ' ')"
        log "slice $slice: ${R[$key.failed]}"
    else
        parse_result "$key" "$line"
        created_total=$((created_total + ${R[$key.extra.created]:-0}))
        R[$key.created_total]=$created_total
        log "$(printf 'slice %3d  %7ss  %7s req/s  p50 %7s  p95 %7s  p99 %7s ms  non-2xx %s  socket errors %s  RSS %s MiB' \
            "$slice" "${R[$key.elapsed]}" "$(rps "${R[$key.rps]}")" "${R[$key.p50_ms]}" "${R[$key.p95_ms]}" \
            "${R[$key.p99_ms]}" "${R[$key.non2xx]}" "${R[$key.sockerr]}" "$(mib "${R[$key.rss_kb]}")")"
    fi
    if ! alive "$SERVER_PID"; then
        status=0
        wait "$SERVER_PID" 2>/dev/null || status=$?
        SERVER_DIED="crm-server exited (status $status) during slice $slice; last log lines: $(tail -n 5 "$SERVE_LOG" | tr '\n' ' ')"
        log "$SERVER_DIED"
        SERVER_PID=
        break
    fi
done
LOAD_END=$(awk -v d="$(($(now_us) - LOAD_T0))" 'BEGIN { printf "%.1f", d / 1e6 }')
echo check >"$PHASE_FILE"
log "load done after $LOAD_END s"

# ---------------------------------------------------------------------------------------
# After the load: health, data, shutdown

HEALTH=- READY=- WALK_OK=0 WALK_PAGES=0 STOP_SECS=- EXIT_STATUS=-
if [[ -n $SERVER_PID ]]; then
    HEALTH=$(http_status "$BASE/api/v1/health")
    READY=$(http_status "$BASE/api/v1/ready")
    log "after the load: /health $HEALTH, /ready $READY"
    log "walking every contact"
    if login_retry && walk_contacts "$CHECK/after.tsv"; then
        WALK_OK=1
    else
        NOTES+=("the contact walk after the load failed")
    fi
    touch "$SAMPLER_STOP"
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    log "stopping crm-server (SIGTERM)"
    t0=$(now_us)
    stop_pid "$SERVER_PID"
    STOP_SECS=$(awk -v d="$(($(now_us) - t0))" 'BEGIN { printf "%.1f", d / 1e6 }')
    EXIT_STATUS=$STOP_STATUS
    SERVER_PID=
    log "crm-server exit status $EXIT_STATUS after $STOP_SECS s"
else
    touch "$SAMPLER_STOP"
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
fi
drop_pg_db

# ---------------------------------------------------------------------------------------
# Verdicts

# Errors.
TOTAL_REQ=0 TOTAL_NON2XX=0 TOTAL_SOCK=0 FAILED_SLICES=0 TOTAL_WRITES=0 TOTAL_CREATED=0
TOTAL_UNPARSED=0 TOTAL_DRAINED=0 TOTAL_READS=0
declare -A SOCK=([connect]=0 [read]=0 [write]=0 [timeout]=0)
declare -A STATUS_SUM=()
for s in "${SLICES[@]}"; do
    k=slice.$s
    if [[ -n ${R[$k.failed]:-} ]]; then
        FAILED_SLICES=$((FAILED_SLICES + 1))
        continue
    fi
    TOTAL_REQ=$((TOTAL_REQ + ${R[$k.requests]:-0}))
    TOTAL_NON2XX=$((TOTAL_NON2XX + ${R[$k.non2xx]:-0}))
    TOTAL_SOCK=$((TOTAL_SOCK + ${R[$k.sockerr]:-0}))
    TOTAL_WRITES=$((TOTAL_WRITES + ${R[$k.extra.writes]:-0}))
    TOTAL_READS=$((TOTAL_READS + ${R[$k.extra.reads]:-0}))
    TOTAL_CREATED=$((TOTAL_CREATED + ${R[$k.extra.created]:-0}))
    TOTAL_UNPARSED=$((TOTAL_UNPARSED + ${R[$k.extra.unparsed_201]:-0}))
    TOTAL_DRAINED=$((TOTAL_DRAINED + ${R[$k.extra.drained]:-0}))
    for e in connect read write timeout; do SOCK[$e]=$((${SOCK[$e]} + ${R[$k.$e]:-0})); done
    if [[ ${R[$k.statuses]} != none ]]; then
        IFS=',' read -ra pairs <<<"${R[$k.statuses]}"
        for p in "${pairs[@]}"; do STATUS_SUM[${p%%:*}]=$((${STATUS_SUM[${p%%:*}]:-0} + ${p#*:})); done
    fi
done
status_list=$(for c in "${!STATUS_SUM[@]}"; do echo "$c:${STATUS_SUM[$c]}"; done | sort -n | paste -sd, - || true)
ERR_DETAILS="$TOTAL_REQ requests in ${#SLICES[@]} slices: statuses ${status_list:-none}; non-2xx $TOTAL_NON2XX; socket errors $TOTAL_SOCK (connect ${SOCK[connect]}, read ${SOCK[read]}, write ${SOCK[write]}, timeout ${SOCK[timeout]})"
if ((FAILED_SLICES > 0)); then ERR_DETAILS+="; $FAILED_SLICES slices without a wrk result"; fi
if ((LOGIN_FAILURES > 0)); then ERR_DETAILS+="; login failed before slice $slice"; fi
if [[ -n $SERVER_DIED ]]; then ERR_DETAILS+="; $SERVER_DIED"; fi
if ((TOTAL_NON2XX == 0 && TOTAL_SOCK == 0 && FAILED_SLICES == 0 && LOGIN_FAILURES == 0)) && [[ -z $SERVER_DIED ]] &&
    ((${#SLICES[@]} > 0)); then
    V_ERRORS=PASS
else
    V_ERRORS=FAIL
fi

# Memory: the RSS at the warm-up point against the largest in the last third of the load.
MEM_LINE=$(awk -v first="${FIRST_SLICE_END:-0}" -v total="$LOAD_END" -v pct="$SOAK_MEM_GROWTH_PCT" \
    -v mib="$SOAK_MEM_GROWTH_MIB" '
    $3 == "load" { n++; t[n] = $1; v[n] = $2 }
    END {
        if (n < 3) { print "FAIL|too few RSS samples (" n ")"; exit }
        warm = first + 0; if (0.2 * total > warm) warm = 0.2 * total
        base = -1; bt = 0
        for (i = 1; i <= n; i++) if (t[i] >= warm) { base = v[i]; bt = t[i]; break }
        if (base < 0) { base = v[n]; bt = t[n] }
        from = 2 * total / 3; max = -1; mt = 0
        for (i = 1; i <= n; i++) if (t[i] >= from && v[i] > max) { max = v[i]; mt = t[i] }
        if (max < 0) { max = v[n]; mt = t[n] }
        allowed = base * pct / 100; if (mib * 1024 > allowed) allowed = mib * 1024
        growth = max - base
        verdict = (growth <= allowed) ? "PASS" : "FAIL"
        printf "%s|warm RSS %.1f MiB (at %.0f s; warm-up until %.0f s); largest in the last third (from %.0f s) %.1f MiB (at %.0f s); growth %+.1f MiB (%+.1f%%), allowed %.1f MiB\n",
            verdict, base / 1024, bt, warm, from, max / 1024, mt, growth / 1024, (base > 0 ? 100 * growth / base : 0), allowed / 1024
    }' "$RSS_FILE" 2>/dev/null || echo "FAIL|no RSS samples")
V_MEMORY=${MEM_LINE%%|*}
MEM_DETAILS=${MEM_LINE#*|}

# Data.
cat "$CREATED"/created.* 2>/dev/null >"$CHECK/acked.tsv" || true
cut -f1 "$CHECK/acked.tsv" | sort >"$CHECK/acked.all"
sort -u "$CHECK/acked.all" >"$CHECK/acked.ids"
ACKED_RECORDED=$(count_lines "$CHECK/acked.all")
ACKED_N=$(count_lines "$CHECK/acked.ids")
ACKED_DUPS=$((ACKED_RECORDED - ACKED_N))
DATA_PROBLEMS=()
if ((ACKED_RECORDED != TOTAL_CREATED)); then
    DATA_PROBLEMS+=("$ACKED_RECORDED ids recorded but wrk counted $TOTAL_CREATED 201s with an id")
fi
if ((ACKED_DUPS > 0)); then DATA_PROBLEMS+=("$ACKED_DUPS ids acknowledged by more than one 201"); fi
if ((TOTAL_UNPARSED > 0)); then DATA_PROBLEMS+=("$TOTAL_UNPARSED 201s without an id in the body"); fi
if ((BEFORE_DUPS > 0)); then DATA_PROBLEMS+=("$BEFORE_DUPS contacts listed twice by the walk before the load"); fi
if [[ $WALK_OK == 1 ]]; then
    cut -f1 "$CHECK/after.tsv" | sort >"$CHECK/after.all"
    sort -u "$CHECK/after.all" >"$CHECK/after.ids"
    AFTER_LISTED=$(count_lines "$CHECK/after.all")
    AFTER_N=$(count_lines "$CHECK/after.ids")
    AFTER_DUPS=$((AFTER_LISTED - AFTER_N))
    comm -23 "$CHECK/acked.ids" "$CHECK/after.ids" >"$CHECK/missing-acked.ids"
    comm -23 "$CHECK/seeded.ids" "$CHECK/after.ids" >"$CHECK/missing-seeded.ids"
    sort -u "$CHECK/seeded.ids" "$CHECK/acked.ids" >"$CHECK/known.ids"
    comm -23 "$CHECK/after.ids" "$CHECK/known.ids" >"$CHECK/extra.ids"
    MISSING_ACKED=$(count_lines "$CHECK/missing-acked.ids")
    MISSING_SEEDED=$(count_lines "$CHECK/missing-seeded.ids")
    EXTRA_N=$(count_lines "$CHECK/extra.ids")
    EXPECTED=$((SEEDED_N + ACKED_N))
    if ((MISSING_ACKED > 0)); then
        DATA_PROBLEMS+=("$MISSING_ACKED acknowledged contacts missing (e.g. $(head -n 3 "$CHECK/missing-acked.ids" | paste -sd' ' -))")
    fi
    if ((MISSING_SEEDED > 0)); then
        DATA_PROBLEMS+=("$MISSING_SEEDED seeded contacts missing (e.g. $(head -n 3 "$CHECK/missing-seeded.ids" | paste -sd' ' -))")
    fi
    if ((AFTER_DUPS > 0)); then DATA_PROBLEMS+=("$AFTER_DUPS contacts listed twice by the walk"); fi
    if ((AFTER_N != EXPECTED)); then
        DATA_PROBLEMS+=("$AFTER_N contacts, expected $SEEDED_N seeded + $ACKED_N acknowledged = $EXPECTED")
    fi
    # Where did unknown records come from? A soak.lua POST carries a unique title
    # "soak <slice>.<thread>.<n>": one whose answer wrk never read (dropped at a slice's end,
    # socket error, non-2xx) may have created its contact; anything else is a phantom.
    EXTRA_DETAILS=
    if ((EXTRA_N > 0)); then
        sort -t $'\t' -k1,1 "$CHECK/after.tsv" >"$CHECK/after.sorted.tsv"
        join -t $'\t' "$CHECK/extra.ids" "$CHECK/after.sorted.tsv" >"$CHECK/extra.tsv" || true
        cut -f2 "$CHECK/acked.tsv" | sort -u >"$CHECK/acked.titles"
        awk -F'\t' '$2 ~ /^soak [0-9]+\.[0-9]+\.[0-9]+$/ { print $2 }' "$CHECK/extra.tsv" | sort >"$CHECK/extra.titles"
        unmarked=$((EXTRA_N - $(count_lines "$CHECK/extra.titles")))
        twice=$(comm -12 "$CHECK/extra.titles" "$CHECK/acked.titles" | wc -l)
        dup_titles=$(uniq -d "$CHECK/extra.titles" | wc -l)
        unanswered=$((TOTAL_WRITES - TOTAL_CREATED))
        EXTRA_DETAILS="$EXTRA_N contacts neither seeded nor acknowledged: $unmarked without a soak title; $twice with the title of an acknowledged POST (a second record for one request); $dup_titles titles twice; the rest from POSTs never acknowledged ($unanswered POSTs sent without a 201 read back)"
        DATA_PROBLEMS+=("$EXTRA_DETAILS")
    fi
    DATA_DETAILS="walked $AFTER_N contacts in $WALK_PAGES pages: $SEEDED_N seeded + $ACKED_N acknowledged by a 201 = $EXPECTED expected; acknowledged missing $MISSING_ACKED; seeded missing $MISSING_SEEDED; listed twice $AFTER_DUPS; unknown $EXTRA_N"
else
    DATA_PROBLEMS+=("no contact walk after the load")
    DATA_DETAILS="not checked: no contact walk after the load ($ACKED_N contacts acknowledged)"
fi
if ((${#DATA_PROBLEMS[@]} == 0)); then V_DATA=PASS; else V_DATA=FAIL; fi

# Health and shutdown.
if [[ $HEALTH == 200 && $READY == 200 && $EXIT_STATUS == 0 ]]; then V_SHUTDOWN=PASS; else V_SHUTDOWN=FAIL; fi
SHUTDOWN_DETAILS="/api/v1/health $HEALTH, /api/v1/ready $READY after the load; SIGTERM: exit status $EXIT_STATUS after $STOP_SECS s"

warnings=$(grep -ciE 'warn|error|panic' "$SERVE_LOG" || true)
if [[ $warnings -gt 0 ]]; then
    NOTES+=("crm-server logged $warnings warning/error lines; e.g.: $(grep -iE 'warn|error|panic' "$SERVE_LOG" | head -n 3 | cut -c1-300 | tr '\n' ' ')")
fi
ELAPSED=$(($(date +%s) - START))

# ---------------------------------------------------------------------------------------
# Report

val() { # key field [default]
    local v=${R[$1.$2]:-}
    if [[ -z $v ]]; then v=${3:--}; fi
    printf '%s' "$v"
}

{
    echo "# Soak test: crm-server"
    echo
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`benches/load/soak.sh\` in ${ELAPSED} s."
    echo
    machine_line
    if [[ $SOAK_STORE == postgres ]]; then
        echo "- Store: PostgreSQL $PG_VERSION on the same machine, a fresh database (dropped afterwards); db pool ${SOAK_DB_POOL_SIZE:-server default}."
    else
        echo "- Store: redb in a fresh temp data dir."
    fi
    echo "- Seed: $SEED_CONTACTS contacts, $SEED_COMPANIES companies, $SEED_DEALS deals, $SEED_TASKS tasks, $SEED_NOTES notes (\`crm-server seed\`, $SEED_SECS s); the GETs pick among all $SEEDED_N seeded contacts."
    echo "- Load: $WRK_VERSION on the same machine, $threads threads, $SOAK_CONNECTIONS connections, ${SOAK_DURATION} s in slices of ${SOAK_SLICE} s (a fresh login before each), timeout $SOAK_TIMEOUT; $((100 - SOAK_WRITE_PCT))% GET one contact / $SOAK_WRITE_PCT% create contact, no new create in the last ${SOAK_DRAIN} s of a slice (drain). Sent: $TOTAL_READS GETs, $TOTAL_WRITES POSTs ($TOTAL_DRAINED creates turned into GETs by the drain)."
    echo "- crm-server: rate limits raised to $RATE_BIG per period, bcrypt cost $SOAK_BCRYPT_COST, log level warn${SOAK_SERVER_ARGS:+, extra args \`$SOAK_SERVER_ARGS\`}. RSS (VmRSS) sampled every $SOAK_RSS_INTERVAL s."
    echo
    echo "## Verdicts"
    echo
    echo "| check | verdict | details |"
    echo "|---|---|---|"
    echo "| no unexpected errors | $V_ERRORS | $ERR_DETAILS |"
    echo "| memory flat | $V_MEMORY | $MEM_DETAILS (at most $SOAK_MEM_GROWTH_PCT% or $SOAK_MEM_GROWTH_MIB MiB) |"
    data_cell=$DATA_DETAILS
    if ((${#DATA_PROBLEMS[@]} > 0)); then
        data_cell+="<br>problems: $(printf '%s; ' "${DATA_PROBLEMS[@]}" | sed 's/; $//')"
    fi
    echo "| data intact | $V_DATA | $data_cell |"
    echo "| healthy, clean shutdown | $V_SHUTDOWN | $SHUTDOWN_DETAILS |"
    echo
    echo "## Slices"
    echo
    echo "Latencies in ms (wrk, closed loop). Elapsed: wall time since the load started, at the end of the slice. Non-2xx counts every status outside 200-299; socket errors are connect/read/write/timeout."
    echo
    echo "| slice | elapsed s | s | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | creates (201) | creates so far | non-2xx | socket errors c/r/w/t | RSS MiB at end | notes |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
    for s in "${SLICES[@]}"; do
        k=slice.$s
        note=${R[$k.failed]:-}
        if [[ ${R[$k.non2xx]:-0} != 0 ]]; then note+="statuses ${R[$k.statuses]}"; fi
        sock=-
        if [[ -n ${R[$k.connect]:-} ]]; then sock="${R[$k.connect]}/${R[$k.read]}/${R[$k.write]}/${R[$k.timeout]}"; fi
        echo "| $s | $(val "$k" elapsed) | $(val "$k" secs) | $(val "$k" requests) | $(rps "$(val "$k" rps)") | $(val "$k" p50_ms) | $(val "$k" p95_ms) | $(val "$k" p99_ms) | $(val "$k" max_ms) | $(val "$k" extra.created 0) | $(val "$k" created_total) | $(val "$k" non2xx) | $sock | $(mib "$(val "$k" rss_kb 0)") | $note |"
    done
    echo
    echo "## RSS over time"
    echo
    echo "crm-server VmRSS, one row per 30 s of load (the first sample at or after each mark), the last sample of the load, and the largest during the data check."
    echo
    echo "| t s | RSS MiB | phase |"
    echo "|---:|---:|---|"
    awk '
        BEGIN { mark = 0; shown = 0; lastnr = 0; cmax = 0 }
        $3 == "load" { if ($1 >= mark) { printf "| %.0f | %.1f | load |\n", $1, $2 / 1024; mark = (int($1 / 30) + 1) * 30; shown = NR } lastnr = NR; lt = $1; lv = $2 }
        $3 == "check" { if ($2 > cmax) { cmax = $2; ct = $1 } }
        END {
            if (lastnr && lastnr != shown) printf "| %.0f | %.1f | load (last) |\n", lt, lv / 1024
            if (cmax) printf "| %.0f | %.1f | data check (max) |\n", ct, cmax / 1024
        }' "$RSS_FILE" 2>/dev/null || true
    echo
    if ((${#NOTES[@]} > 0)); then
        echo "## Notes"
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
        echo
    fi
} >"$WORK/report.md"
publish_report "$SOAK_OUTPUT"
log "verdicts: errors $V_ERRORS, memory $V_MEMORY, data $V_DATA, shutdown $V_SHUTDOWN"

if [[ $V_ERRORS == PASS && $V_MEMORY == PASS && $V_DATA == PASS && $V_SHUTDOWN == PASS ]]; then
    exit 0
fi
exit 1
