# Helpers shared by the load scripts (run.sh, soak.sh, compare.sh, ...) and the API checks
# (schemathesis, typescript); sourced, not run.
#
# The caller sets `set -euo pipefail` and LOG_TAG (the log prefix), and before it uses them:
# WORK (a private work dir, see make_work_dir), PG_ADMIN_URL (PostgreSQL admin URL), BASE
# (the server's http://host:port). It declares `R` (an associative array) if it uses
# parse_result.
#
# Globals set on sourcing: LOAD_DIR (this folder) and ROOT (the repository's root). Globals
# these helpers set: WRK_VERSION, JWT_SECRET, ADMIN_EMAIL, ADMIN_PASSWORD, LOGIN_JSON,
# AUTH_HEADER, TOKEN, PG_DB, STORE_ENV, STORE_FLAGS, STORE_ERROR, SERVER_PID, STOP_STATUS,
# TARGET_DIR. None of the secrets is ever printed.

# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals set here are read by the scripts that source this

LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LOAD_DIR/../.." && pwd)

# Rate limits are raised out of the way: these tests measure the server, not the limiter's quotas.
RATE_BIG=1000000000

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${LOG_TAG:-load}" -1 "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------
# Tools

require_tools() { # tool...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is required"
    done
}

ensure_wrk() { # installs wrk with apt-get when missing (as root); sets WRK_VERSION
    if ! command -v wrk >/dev/null; then
        log "wrk not found: installing it with apt-get"
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            apt-get install -y wrk >/dev/null 2>&1 ||
                { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } ||
                die "apt-get install wrk failed"
        else
            die "install wrk (Debian/Ubuntu: apt-get install wrk)"
        fi
    fi
    WRK_VERSION=$(wrk --version 2>&1 | head -1 | awk '{print $1, $2}' || true)
}

raise_fd_limit() { # 1000 connections, on both ends, need file descriptors
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt 4096 ]]; then
        log "warning: only $(ulimit -n) file descriptors: 1000-connection runs may fail"
    fi
}

# ---------------------------------------------------------------------------------------
# Build, clean-up and reports

build_release() { # cargo build arguments: a release build in $ROOT (none with LOAD_SKIP_BUILD=1);
    # stays in $ROOT, sets TARGET_DIR
    cd "$ROOT"
    if [[ ${LOAD_SKIP_BUILD:-0} != 1 ]]; then
        log "building: cargo build --release $*"
        cargo build --release "$@"
    fi
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
}

on_exit() { # function: runs it when the script exits, and exits 130 on SIGINT, 143 on SIGTERM
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

remove_work_dir() { # keep: 1 keeps $WORK (and says where it is); otherwise it is removed
    if [[ $1 == 1 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}

machine_line() { # a report's line naming the commit (and whether it had changes) and the machine
    local commit cpu
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
    if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1) ]]; then commit="$commit (with uncommitted changes)"; fi
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo '?')
    echo "- Commit $commit; $(nproc) cores ($cpu), Linux $(uname -r)."
}

publish_report() { # output: prints $WORK/report.md and copies it to output
    echo
    cat "$WORK/report.md"
    cp "$WORK/report.md" "$1"
    log "written to $1"
}

seed_sizes() { # prefix size: sets SEED_CONTACTS, _COMPANIES, _DEALS, _TASKS and _NOTES to
    # <prefix>_CONTACTS etc. when set, else to size times 20000, 2000, 4000, 10000, 20000
    local kind n var
    for kind in CONTACTS:20000 COMPANIES:2000 DEALS:4000 TASKS:10000 NOTES:20000; do
        var=$1_${kind%%:*}
        n=${!var:-$(awk -v s="$2" -v n="${kind#*:}" 'BEGIN { printf "%d", s * n }')}
        printf -v "SEED_${kind%%:*}" '%s' "$n"
    done
}

# ---------------------------------------------------------------------------------------
# Work dir and secrets

make_work_dir() { # prefix: creates an owner-only temp dir, sets WORK
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    chmod 700 "$WORK"
}

random_alnum() { head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }

# Fresh for every run and never printed: the JWT secret, the admin's password, the access
# tokens. The login body and the curl header file are owner-only files in $WORK.
init_secrets() { # admin email
    JWT_SECRET=$(random_alnum 48)
    ADMIN_EMAIL=$1
    ADMIN_PASSWORD="Ld-$(random_alnum 24)-9x"
    LOGIN_JSON=$WORK/login.json
    AUTH_HEADER=$WORK/auth.header # "Authorization: Bearer ..." for curl -H @file
    (
        umask 077
        jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{email: $e, password: $p}' >"$LOGIN_JSON"
    )
    TOKEN=
}

# ---------------------------------------------------------------------------------------
# Processes

alive() { # running (a zombie is not)
    [[ -r /proc/$1/status ]] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_pid() { # pid: TERM, up to 15 s, then KILL; reaps it and sets STOP_STATUS (its exit status)
    local pid=$1 i
    STOP_STATUS=
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "pid $pid did not stop on SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    STOP_STATUS=0
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
}

free_port() {
    local p _
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 10000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

wait_http() { # url pid log: waits up to 60 s for a 200
    local url=$1 pid=$2 logf=$3 i
    for ((i = 0; i < 600; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
        if ! alive "$pid"; then
            log "process $pid exited before answering $url; last log lines:"
            tail -n 20 "$logf" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "$url did not answer within 60 s"
    return 1
}

rss_kb() { # pid: its VmRSS in kB (0 when gone)
    local k v _
    if [[ -r /proc/$1/status ]]; then
        while read -r k v _; do
            if [[ $k == VmRSS: ]]; then
                echo "$v"
                return 0
            fi
        done <"/proc/$1/status" 2>/dev/null || true
    fi
    echo 0
}

rss_peak_sampler() { # pid stopfile outfile: peak VmRSS (kB), sampled every 0.2 s until stopfile exists
    local pid=$1 stop=$2 out=$3 peak=0 v
    while [[ ! -e $stop ]]; do
        v=$(rss_kb "$pid")
        if ((v > peak)); then peak=$v; fi
        sleep 0.2
    done
    echo "$peak" >"$out"
}

now_us() { echo "${EPOCHREALTIME/./}"; } # wall clock in microseconds

rss_series_sampler() { # pid stopfile outfile interval-seconds t0-us [phasefile]
    # Appends "<seconds since t0> <VmRSS kB> <phase>" every interval until stopfile exists;
    # phase is the first word of phasefile ("-" without one).
    local pid=$1 stop=$2 out=$3 interval=$4 t0=$5 phasef=${6:-} phase v now next
    next=${EPOCHREALTIME/./}
    while [[ ! -e $stop ]]; do
        v=$(rss_kb "$pid")
        now=${EPOCHREALTIME/./}
        phase=-
        if [[ -n $phasef && -r $phasef ]]; then read -r phase _ <"$phasef" || phase=-; fi
        printf '%d.%d %d %s\n' $(((now - t0) / 1000000)) $(((now - t0) % 1000000 / 100000)) "$v" "$phase" >>"$out"
        next=$((next + interval * 1000000))
        # Small steps, so that the stop file is noticed quickly.
        while [[ ! -e $stop ]] && ((${EPOCHREALTIME/./} < next)); do sleep 0.2; done
    done
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

PG_DB=

pg_url_for() { # the admin URL with its database replaced by $1
    local base=${PG_ADMIN_URL%%\?*}
    local query=${PG_ADMIN_URL#"$base"}
    local rest=${base#*://}
    if [[ $rest == */* ]]; then base=${base%/*}; fi
    printf '%s/%s%s' "$base" "$1" "$query"
}

pg_check() { # is a server there? sets STORE_ERROR when not
    if ! command -v psql >/dev/null; then
        STORE_ERROR="psql not found (Debian: apt-get install postgresql-client)"
        return 1
    fi
    if ! psql "$PG_ADMIN_URL" -qAtX -c 'select 1' >/dev/null 2>&1; then
        STORE_ERROR="no server at CRM_TEST_DATABASE_URL or 127.0.0.1:5432 (.ci/postgres starts one)"
        return 1
    fi
}

pg_version() { psql "$PG_ADMIN_URL" -qAtX -c 'show server_version' 2>/dev/null || echo '?'; }

create_pg_db() { # prefix: a fresh database, named in PG_DB (dropped by drop_pg_db)
    PG_DB="$1_$(date +%s)_$$"
    psql "$PG_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
}

drop_pg_db() {
    [[ -n $PG_DB ]] || return 0
    psql "$PG_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
        psql "$PG_ADMIN_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null 2>&1 ||
        log "warning: could not drop database $PG_DB"
    PG_DB=
}

# ---------------------------------------------------------------------------------------
# crm-server: store, seed, serve

STORE_ENV=()
STORE_FLAGS=()
STORE_ERROR=
SERVER_PID=

prepare_store() { # store data-dir db-prefix: sets STORE_ENV and STORE_FLAGS (redb: data dir;
    # postgres: a fresh database); returns 1 with STORE_ERROR set when the store is unavailable
    local store=$1 data_dir=$2 prefix=$3
    STORE_ERROR=
    case $store in
    redb)
        mkdir -p "$data_dir"
        STORE_ENV=(-u DATABASE_URL -u CRM_DATA_DIR)
        STORE_FLAGS=(--data-dir "$data_dir")
        ;;
    postgres)
        pg_check || return 1
        create_pg_db "$prefix"
        STORE_ENV=(-u CRM_DATA_DIR "DATABASE_URL=$(pg_url_for "$PG_DB")")
        STORE_FLAGS=()
        ;;
    *) die "unknown store $store (redb, postgres)" ;;
    esac
}

seed_store() { # server-bin log bcrypt-cost contacts companies deals tasks notes
    # (the admin's password goes in the environment, not on the command line)
    local bin=$1 logf=$2 cost=$3
    env "${STORE_ENV[@]}" CRM_BCRYPT_COST="$cost" CRM_SEED_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        "$bin" seed "${STORE_FLAGS[@]}" --admin-email "$ADMIN_EMAIL" \
        --contacts "$4" --companies "$5" --deals "$6" --tasks "$7" --notes "$8" >"$logf" 2>&1
}

start_server() { # server-bin port log bcrypt-cost [extra serve args...]: starts `crm-server
    # serve` on 127.0.0.1:port (rate limits raised, log level warn), sets SERVER_PID and BASE,
    # waits for /api/v1/health; returns 1 (server stopped) when it does not come up
    local bin=$1 port=$2 logf=$3 cost=$4
    shift 4
    BASE=http://127.0.0.1:$port
    local args=(serve "${STORE_FLAGS[@]}" --bind "127.0.0.1:$port"
        --log-level warn --log-format text --bcrypt-cost "$cost"
        --rate-user-per-minute "$RATE_BIG" --rate-address-per-minute "$RATE_BIG"
        --rate-login-per-minute "$RATE_BIG" --rate-refresh-per-minute "$RATE_BIG"
        --rate-reset-per-hour "$RATE_BIG" "$@")
    env "${STORE_ENV[@]}" CRM_JWT_SECRET="$JWT_SECRET" "$bin" "${args[@]}" >"$logf" 2>&1 &
    SERVER_PID=$!
    if ! wait_http "$BASE/api/v1/health" "$SERVER_PID" "$logf"; then
        stop_pid "$SERVER_PID"
        SERVER_PID=
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# API

login() { # sets TOKEN and the curl header file; never prints them
    local body
    body=$(curl -fsS --max-time 30 -H 'Content-Type: application/json' \
        --data-binary @"$LOGIN_JSON" "$BASE/api/v1/auth/login") || return 1
    TOKEN=$(jq -r '.access_token // empty' <<<"$body")
    [[ -n $TOKEN ]] || return 1
    (
        umask 077
        printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HEADER"
    )
}

api_get() { # path, with the token
    curl -fsS --max-time 30 -H @"$AUTH_HEADER" "$BASE$1"
}

contact_ids() { # file [names]: the first LOAD_IDS contacts' "<id> <version>" lines at $BASE
    # into file (and their first and last names into names), signed in with $AUTH_HEADER
    local out=$1 names=${2:-} cursor="" page
    : >"$out"
    if [[ -n $names ]]; then : >"$names"; fi
    while true; do
        local args=(--get --data-urlencode "limit=100")
        if [[ -n $cursor ]]; then args+=(--data-urlencode "cursor=$cursor"); fi
        page=$(curl -fsS --max-time 30 -H @"$AUTH_HEADER" "${args[@]}" "$BASE/api/v1/contacts")
        jq -r '.data[] | "\(.id) \(.version)"' <<<"$page" >>"$out"
        if [[ -n $names ]]; then jq -r '.data[] | .first_name, .last_name' <<<"$page" >>"$names"; fi
        cursor=$(jq -r '.next_cursor // empty' <<<"$page")
        if [[ -z $cursor || $(wc -l <"$out") -ge $LOAD_IDS ]]; then break; fi
    done
    head -n "$LOAD_IDS" "$out" >"$out.tmp" && mv "$out.tmp" "$out"
}

http_status() { # url: the status code of a GET (000 when no answer)
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# wrk results

parse_result() { # key "@@RESULT k=v ..." (common.lua's done()): into R[key.k]
    local key=$1 kv
    for kv in ${2#@@RESULT }; do
        R[$key.${kv%%=*}]=${kv#*=}
    done
    R[$key.sockerr]=$((${R[$key.connect]:-0} + ${R[$key.read]:-0} + ${R[$key.write]:-0} + ${R[$key.timeout]:-0}))
}
