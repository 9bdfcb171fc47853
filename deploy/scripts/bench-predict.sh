#!/usr/bin/env bash
# `make bench-predict`: issue 3's prediction targets measured on this machine; writes the
# results, with the command that produced them, to the "Prediction" section of
# docs/benchmarks.md (the other sections stay as they are).
#
#   deploy/scripts/bench-predict.sh [--machines N] [--rounds N] [--iters N] [--requests N]
#                                   [--model ARTIFACT.json] [--no-write]
#
# The benchmark (services/prediction/benches/predict.rs) creates its own database.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

machines=10000
rounds=5
iters=50000
requests=200
model=""
write=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --machines) machines="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --iters) iters="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --model) model="$(realpath "$2")"; shift 2 ;;
        --no-write) write=0; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) die "unknown option: $1" ;;
    esac
done

ensure_build_deps
ensure_postgres

cd "${AURUMAI_ROOT}"
log "building and running the prediction benchmark (release profile)"
result="$(mktemp)"
section="$(mktemp)"
trap 'rm -f "${result}" "${section}"' EXIT
if [[ -n "${model}" ]]; then
    export BENCH_MODEL="${model}"
fi
BENCH_MACHINES="${machines}" BENCH_ROUNDS="${rounds}" BENCH_SCORE_ITERS="${iters}" \
    BENCH_FLEET_REQUESTS="${requests}" \
    cargo bench -p aurum-prediction --bench predict | tee "${result}"

if [[ "${write}" == 1 ]]; then
    out=docs/benchmarks.md
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    args="--machines ${machines} --rounds ${rounds} --iters ${iters} --requests ${requests}"
    if [[ -n "${model}" ]]; then
        args="${args} --model $(basename "${model}")"
    fi
    {
        echo "## Prediction: scoring, fleet batches and the fleet view"
        echo
        echo "Run on $(date -u +%Y-%m-%d) on $(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/Mem:/ {print $2}') GiB,"
        echo "PostgreSQL $(psql --version | awk '{print $3}'), with:"
        echo
        echo '```sh'
        echo "make bench-predict BENCH_ARGS=\"${args}\""
        echo '```'
        echo
        cat "${result}"
        echo
        cat <<'TEXT'
How it is measured (services/prediction/benches/predict.rs, release profile):

- The model: the API tests' fixture recipe (36 simulated field lifecycles of 9 machines,
  `aurum_models::train`), trained once and cached in the target directory, or the artifact
  given with `--model`. The feature vectors: the held-out runs' vectors of each machine type
  (about 2,300 each), so scores cover healthy, drifting and failing windows.
- 1: `ModelArtifact::score` called one vector at a time, each call timed on its own, after
  2,000 warm-up calls; nearest-rank percentiles.
- 2a: the 10,000 machines' vectors scored one after the other on one thread, 20 times.
- 2b: the service (`aurum_prediction::Application`, as in production, pool of 16
  connections, body limit raised to 32 MiB so that 5,000 vectors fit in one request; the
  default 1 MiB takes about 500) runs in the benchmark's process on a fresh database. A
  round sends every machine's next window (each machine walks its own held-out trajectory,
  so alerts are raised and cleared as they would be) as N concurrent `POST /v1/features`
  requests, bodies encoded before the clock starts; the time is from the first request to
  the last response, each answered 200 with every vector scored. Each answer means the
  vectors are scored, the machines tracked, the history rows and status rows written and the
  alert changes decided and written, in PostgreSQL. The first round creates the 10,000
  machines and is reported on its own. Afterwards the database must hold exactly 10,000
  statuses and one prediction per machine and round.
- 3: after `VACUUM ANALYZE`, 200 sequential `GET /v1/fleet/health` of the tenant's 10,000
  machines (after 5 warm-up requests), timed until the whole body is read.
- Everything (client, service, PostgreSQL) shares the same cores.
TEXT
    } > "${section}"
    replace_section "${out}" "## Prediction" "${section}"
    log "wrote the Prediction section of ${out}"
fi
