#!/usr/bin/env bash
# `make bench-ingest`: measures the ingest path side by side on this machine and writes the
# results, with the command that produced them, to the "Ingestion" section of
# docs/benchmarks.md (the other sections stay as they are).
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
section="$(mktemp)"
trap 'rm -f "${result}" "${section}"' EXIT
BENCH_MESSAGES="${messages}" BENCH_MACHINES="${machines}" BENCH_LATENCY_S="${latency_s}" \
    cargo bench -p aurum-ingestion --bench ingest | tee "${result}"

if [[ "${write}" == 1 ]]; then
    out=docs/benchmarks.md
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    {
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
        cat <<'TEXT'
How it is measured (services/ingestion/benches/ingest.rs), each against the benchmark's own
Mosquitto and database:

- (a) one publisher (1000 QoS 1 messages in flight) to a subscriber that only counts,
  subscribed as the service subscribes by default (plainly, one replica), in a process of its own (the MQTT client library serialises the clients of one
  process), from the first publish to the last message received. This is the same publisher
  and the same CPU sharing as (c), so it is the comparison for (c).
- (a2) the same subscriber draining a backlog the broker queued for its session while it was
  away: the broker's delivery with no publisher competing for the two cores.
- (b) COPY of the same rows (one per message, the seven readings as JSON) into the
  partitioned, keyed `ingestion.telemetry`.
- (c) the release `aurum-ingestion` binary as its own process, from the first publish until
  the service's commit counter reaches every message; afterwards `count(*)` must equal the
  number published (exactly once).
- Latency: the service's `aurum_ingest_lag_seconds` histogram (commit time minus the device
  timestamp, which the publisher sets when it builds the message), over a paced run at 80 % of
  (c)'s rate.

In (c) the two cores are saturated by the four processes together: `top -b -d 4`, sampled
during (c) of a 400000-message run, showed the benchmark's publisher at 71 %, the ingestion
service at 53 %, Mosquitto at 43 % and the PostgreSQL backends at about 25 % (of 200 %).
TEXT
    } > "${section}"
    replace_section "${out}" "## Ingestion" "${section}"
    log "wrote the Ingestion section of ${out}"
fi
