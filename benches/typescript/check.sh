#!/usr/bin/env bash
# A TypeScript client generated from crm-server's served OpenAPI document must type-check
# against a hand-written usage file.
#
#   benches/typescript/check.sh
#
# Builds crm-server (debug), starts it on 127.0.0.1 with a temporary redb store, saves
# /api/v1/openapi.json to generated/openapi.json, generates generated/api.d.ts with
# openapi-typescript and runs tsc over usage.ts (openapi-fetch's typed client on those
# types). The npm packages are pinned by package-lock.json and installed with `npm ci` when
# node_modules/ is missing or older than the lock file (this needs the npm registry).
#
# Exit status 0 when usage.ts type-checks, including its `@ts-expect-error` lines (each must
# be an error, so the generated types cannot have gone loose).

set -euo pipefail

TS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=typescript
# shellcheck source=../load/lib.sh
source "$TS_DIR/../load/lib.sh"

require_tools curl node npm cargo

cd "$TS_DIR"
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
    log "installing the pinned npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi

# CRM_SERVER_BIN: a crm-server binary already built (CI passes the one `cargo test
# --workspace` built for the integration tests, which a `cargo build -p crm-server` would
# rebuild with other dependency features); otherwise build it.
SERVER_BIN=${CRM_SERVER_BIN:-}
if [[ -z $SERVER_BIN ]]; then
    log "building crm-server"
    (cd "$ROOT" && CARGO_INCREMENTAL=0 cargo build -q -p crm-server)
    SERVER_BIN=$ROOT/target/debug/crm-server
fi

make_work_dir crm-typescript
SERVER_PID=
trap 'stop_pid "$SERVER_PID"; rm -rf "$WORK"' EXIT
PORT=$(free_port)
"$SERVER_BIN" serve --data-dir "$WORK/data" --bind "127.0.0.1:$PORT" \
    --log-level warn >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_http "http://127.0.0.1:$PORT/api/v1/health" "$SERVER_PID" "$WORK/server.log" ||
    die "crm-server did not start"

mkdir -p generated
curl -fsS "http://127.0.0.1:$PORT/api/v1/openapi.json" -o generated/openapi.json
stop_pid "$SERVER_PID"
SERVER_PID=

bin=$TS_DIR/node_modules/.bin
log "generating generated/api.d.ts (openapi-typescript $(node -p 'require("openapi-typescript/package.json").version'))"
"$bin/openapi-typescript" generated/openapi.json --output generated/api.d.ts --silent
log "type-checking usage.ts ($("$bin/tsc" --version))"
"$bin/tsc" --noEmit -p .
log "usage.ts type-checks against the generated client"
