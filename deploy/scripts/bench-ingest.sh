#!/usr/bin/env bash
# `make bench-ingest`: measures the ingest path side by side on this machine and writes the
# results, with the command that produced them, to docs/benchmarks.md.
#
#   deploy/scripts/bench-ingest.sh [--messages N] [--machines N] [--latency-s S] [--no-write]
#
# The benchmark (services/ingestion/benches/ingest.rs) starts its own Mosquitto and database.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

messages=200000
machines=100
latency_s=20
write=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --messages) messages="$2"; shift 2 ;;
        --machines) machines="$2"; shift 2 ;;
        --latency-s) latency_s="$2"; shift 2 ;;
        --no-write) write=0; shift ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) die "unknown option: $1" ;;
    esac
done

ensure_build_deps
ensure_postgres
ensure_mosquitto_binary

cd "${AURUMAI_ROOT}"
log "building and running the ingestion benchmark (release profile)"
result="$(mktemp)"
trap 'rm -f "${result}"' EXIT
BENCH_MESSAGES="${messages}" BENCH_MACHINES="${machines}" BENCH_LATENCY_S="${latency_s}" \
    cargo bench -p aurum-ingestion --bench ingest | tee "${result}"

if [[ "${write}" == 1 ]]; then
    out=docs/benchmarks.md
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    {
        echo "# Benchmarks"
        echo
        echo "## Ingestion: broker, raw COPY and AurumAI end to end"
        echo
        echo "Run on $(date -u +%Y-%m-%d) on $(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/Mem:/ {print $2}') GiB,"
        echo "PostgreSQL $(psql --version | awk '{print $3}'), Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}' || true), with:"
        echo
        echo '```sh'
        echo "make bench-ingest BENCH_ARGS=\"--messages ${messages} --machines ${machines} --latency-s ${latency_s}\""
        echo '```'
        echo
        cat "${result}"
        echo
        echo "How it is measured (services/ingestion/benches/ingest.rs): (a) one publisher, 1000 QoS 1"
        echo "messages in flight, to a shared-subscription subscriber that only counts; (b) COPY of the"
        echo "same rows (one per message, readings as JSON) into the partitioned, keyed"
        echo "\`ingestion.telemetry\`; (c) the release \`aurum-ingestion\` binary as its own process, from"
        echo "the first publish until \`count(*)\` reaches every message; latency from the service's"
        echo "\`aurum_ingest_lag_seconds\` histogram (commit time minus the device timestamp, set at"
        echo "publish), over a paced run at 80 % of (c)'s rate."
    } > "${out}"
    log "wrote ${out}"
fi
