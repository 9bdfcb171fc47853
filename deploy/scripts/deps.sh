#!/usr/bin/env bash
# Installs (and starts) what building and testing AurumAI need, skipping what is already there:
#   - build dependencies: build-essential cmake pkg-config libssl-dev protobuf-compiler libprotobuf-dev (+ curl)
#   - PostgreSQL on 127.0.0.1:5432, superuser postgres without password, TLS on
#   - the mosquitto broker binary and clients (tests start their own brokers; the system broker
#     is not started)
#
#   deploy/scripts/deps.sh               everything (make deps)
#   deploy/scripts/deps.sh --build-only  only the build dependencies (make build, make lint)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_only=0
for arg in "$@"; do
    case "${arg}" in
        --build-only) build_only=1 ;;
        -h | --help)
            sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: ${arg}" ;;
    esac
done

ensure_build_deps
if [[ "${build_only}" -eq 1 ]]; then
    exit 0
fi
ensure_postgres
ensure_mosquitto_binary
log "dependencies ready: $(command -v mosquitto), $(psql --version)"
