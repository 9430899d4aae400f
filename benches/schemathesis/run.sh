#!/usr/bin/env bash
# Schemathesis over crm-server's served OpenAPI document, with every check.
#
#   benches/schemathesis/run.sh                 # build, start on a fresh redb, sign up, run
#   ST_MAX_EXAMPLES=20 benches/schemathesis/run.sh
#   ST_ARGS="--include-operation-id getContact" benches/schemathesis/run.sh
#
# Builds crm-server (debug; ST_RELEASE=1 for release), starts it on 127.0.0.1 with a
# temporary redb store (rate limits raised, bcrypt cost 4), signs up the installation's
# admin, and runs `schemathesis run <server>/api/v1/openapi.json --checks all` signed in as
# that admin (hooks.py). Schemathesis comes from PyPI (requirements.txt), installed into a
# virtualenv under target/ on the first run. The settings Schemathesis is given are in
# schemathesis.toml; the two findings it is told to accept are explained there (HTTP's
# preconditions: 428 for a missing If-Match, 412 for a stale one).
#
# Exit status: Schemathesis's (0: no failure). The summary is printed, and the JUnit and
# NDJSON reports are kept in target/schemathesis/report/ (the server log beside them).

set -euo pipefail

ST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=schemathesis
# shellcheck source=../load/lib.sh
source "$ST_DIR/../load/lib.sh"

OUT=${ST_OUT:-$ROOT/target/schemathesis}
# CPython 3.11 fails inside Hypothesis now and then ("SystemError: AST constructor recursion
# depth mismatch", a CPython bug): a newer interpreter is taken when there is one.
PYTHON=${ST_PYTHON:-}
if [[ -z $PYTHON ]]; then
    for candidate in python3.13 python3.12 python3; do
        # A pyenv shim exists for versions it does not enable: ask the interpreter itself.
        if "$candidate" -c 'import sys' >/dev/null 2>&1; then
            PYTHON=$candidate
            break
        fi
    done
fi
VENV=${ST_VENV:-$OUT/venv-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-50}
SEED=${ST_SEED:-15}
WORKERS=${ST_WORKERS:-2}

require_tools curl jq cargo "$PYTHON"

# Schemathesis, pinned.
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$(sed -n 's/^schemathesis==//p' "$ST_DIR/requirements.txt")"; then
    log "installing Schemathesis into $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$ST_DIR/requirements.txt"
fi
log "$("$VENV/bin/schemathesis" --version)"

profile=debug
build=(cargo build -q -p crm-server)
if [[ -n ${ST_RELEASE:-} ]]; then
    profile=release
    build+=(--release)
fi
log "building crm-server ($profile)"
(cd "$ROOT" && CARGO_INCREMENTAL=0 "${build[@]}")
BIN=$ROOT/target/$profile/crm-server

make_work_dir crm-schemathesis
SERVER_PID=
cleanup() {
    stop_pid "$SERVER_PID"
    [[ -f $WORK/server.log ]] && cp "$WORK/server.log" "$OUT/report/server.log" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT/report"
rm -f "$OUT/report/"*

PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
API=$BASE/api/v1
# Local mode (loopback, plain HTTP, a generated JWT secret in the data dir). 127.0.0.1 is
# a trusted proxy only so that hooks.py's sign-ins can say they come from 127.0.0.2; the
# external token secret is its fallback when the run has changed the admin's credentials.
EXTERNAL_SECRET=$(random_alnum 48)
CRM_EXTERNAL_JWT_SECRET=$EXTERNAL_SECRET "$BIN" serve --data-dir "$WORK/data" --bind "127.0.0.1:$PORT" --trusted-proxy 127.0.0.1 \
    --log-level warn --bcrypt-cost 4 \
    --rate-user-per-minute "$RATE_BIG" --rate-address-per-minute "$RATE_BIG" \
    --rate-login-per-minute "$RATE_BIG" --rate-refresh-per-minute "$RATE_BIG" \
    --rate-reset-per-hour "$RATE_BIG" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_http "$API/health" "$SERVER_PID" "$WORK/server.log" || die "crm-server did not start"

ADMIN_EMAIL=admin@schemathesis.test
ADMIN_PASSWORD="St-$(random_alnum 24)"
USER_ID=$(jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" \
    '{workspace_name: "Schemathesis", email: $e, password: $p}' |
    curl -fsS -H 'content-type: application/json' --data-binary @- "$API/auth/signup" |
    jq -er .user.id) || die "sign-up failed"
log "signed up $ADMIN_EMAIL on $API; running (at most $MAX_EXAMPLES examples per operation, seed $SEED)"

status=0
(
    cd "$OUT"
    # shellcheck disable=SC2086 # ST_ARGS is a list of extra arguments
    CRM_ST_API=$API CRM_ST_EMAIL=$ADMIN_EMAIL CRM_ST_PASSWORD=$ADMIN_PASSWORD \
        CRM_ST_USER_ID=$USER_ID CRM_EXTERNAL_JWT_SECRET=$EXTERNAL_SECRET \
        SCHEMATHESIS_HOOKS=hooks PYTHONPATH=$ST_DIR \
        "$VENV/bin/schemathesis" --config-file "$ST_DIR/schemathesis.toml" run "$API/openapi.json" \
        --checks all --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS" \
        --report junit,ndjson --report-dir "$OUT/report" --no-color ${ST_ARGS:-}
) || status=$?
alive "$SERVER_PID" || die "crm-server died during the run (see $OUT/report/server.log)"
log "done: exit status $status; reports in $OUT/report"
exit "$status"
