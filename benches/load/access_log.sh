#!/usr/bin/env bash
# The access log's cost on GET one contact: crm-server on redb with the access log on (the
# default) and off (--no-access-log), alternating, the same seeded file, wrk's get.lua —
# `variants.sh` with those two variants. Prints each one's median req/s and off's ratio to on.
#
#   benches/load/access_log.sh
#   ACCESS_PAIRS=5 ACCESS_DURATION=15s benches/load/access_log.sh
#
# Settings (environment): ACCESS_PAIRS=3 (rounds), ACCESS_DURATION=10s,
# ACCESS_CONNECTIONS=64, ACCESS_CONTACTS=5000, LOAD_SKIP_BUILD=0, LOAD_THREADS=2.
# Needs what run.sh needs (cargo, curl, jq, wrk).

set -euo pipefail

LOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VARIANTS=$'on|\noff|--no-access-log' \
    VARIANTS_ROUNDS=${ACCESS_PAIRS:-3} \
    VARIANTS_DURATION=${ACCESS_DURATION:-10s} \
    VARIANTS_CONNECTIONS=${ACCESS_CONNECTIONS:-64} \
    VARIANTS_CONTACTS=${ACCESS_CONTACTS:-5000} \
    exec "$LOAD_DIR/variants.sh"
