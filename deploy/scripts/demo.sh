#!/usr/bin/env bash
# AurumAI local demo (`make demo`): PostgreSQL + a demo Mosquitto broker + the ingestion and
# prediction services + the fleet simulator, in the foreground until Ctrl-C.
#
#   deploy/scripts/demo.sh           run until Ctrl-C, then stop what this script started
#   deploy/scripts/demo.sh --check   run until telemetry is stored and scored, then stop (smoke test)
#
# Installs what is missing (build dependencies, PostgreSQL, the mosquitto binary) and starts
# PostgreSQL when it is stopped; services that already run are left alone. Everything the demo
# writes lives in .aurumai/ (`make clean-demo` removes it), including the model trained on
# simulated run-to-failure data the first time (about a minute; reused afterwards).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: deploy/scripts/demo.sh [--check]

  (no option)  start the demo and keep it running until Ctrl-C
  --check      start the demo, wait (up to 90 s) until telemetry is stored and scored,
               print the counts, stop everything and exit 0 (non-zero on failure)

Environment:
  AURUMAI_DEMO_DB_NAME     database to use (default: aurumai)
  AURUMAI_DEMO_HTTP_PORT   preferred ingestion HTTP port (default: 8081; a free one if taken)
  AURUMAI_DEMO_PREDICTION_PORT  preferred prediction HTTP port (default: 8082; a free one if taken)
  AURUMAI_DEMO_MQTT_PORT   preferred broker port (default: 1883; a free one if taken)
  CARGO_TARGET_DIR       where cargo puts binaries (default: target/)
EOF
}

CHECK=0
for arg in "$@"; do
    case "${arg}" in
        --check) CHECK=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument: ${arg}"
            ;;
    esac
done

TENANT=demo
DB_NAME="${AURUMAI_DEMO_DB_NAME:-aurumai}"
STATE_DIR="${AURUMAI_ROOT}/.aurumai"
LOG_DIR="${STATE_DIR}/logs"
SPOOL_DIR="${STATE_DIR}/spool"
MQTT_DIR="${STATE_DIR}/mosquitto"
MQTT_CONF="${STATE_DIR}/mosquitto.conf"
DEMO_ENV="${STATE_DIR}/demo.env"
LABELS_CSV="${STATE_DIR}/labels.csv"
MODEL_FILE="${STATE_DIR}/model.json"
CHECK_TIMEOUT_S=90
READY_TIMEOUT_S=120

cd "${AURUMAI_ROOT}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "${TARGET_DIR}" == /* ]] || TARGET_DIR="${AURUMAI_ROOT}/${TARGET_DIR}"
INGESTION_BIN="${TARGET_DIR}/debug/aurum-ingestion"
PREDICTION_BIN="${TARGET_DIR}/debug/aurum-prediction"
SIM_BIN="${TARGET_DIR}/debug/aurum-sim"

# ---------------------------------------------------------------------------------------------
# Processes this script started: stopped by pid on exit, newest first. Nothing else is touched.

PIDS=()
NAMES=()
LOGS=()

start_bg() {
    local name="$1" logfile="$2"
    shift 2
    "$@" >>"${logfile}" 2>&1 &
    local pid=$!
    PIDS+=("${pid}")
    NAMES+=("${name}")
    LOGS+=("${logfile}")
    log "started ${name} (pid ${pid}), log: ${logfile#"${AURUMAI_ROOT}"/}"
}

pid_of() {
    local i
    for i in "${!NAMES[@]}"; do
        if [[ "${NAMES[i]}" == "$1" ]]; then
            printf '%s\n' "${PIDS[i]}"
            return 0
        fi
    done
    return 1
}

is_running() {
    kill -0 "$1" 2>/dev/null
}

show_log_tail() {
    local logfile="$1"
    if [[ -s "${logfile}" ]]; then
        printf -- '--- last lines of %s ---\n' "${logfile#"${AURUMAI_ROOT}"/}" >&2
        tail -n 30 "${logfile}" >&2 || true
        printf -- '---\n' >&2
    fi
}

stop_one() {
    local name="$1" pid="$2" grace="$3"
    is_running "${pid}" || {
        wait "${pid}" 2>/dev/null || true
        return 0
    }
    log "stopping ${name} (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while is_running "${pid}" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if is_running "${pid}"; then
        warn "${name} (pid ${pid}) did not stop within ${grace}s: killing it"
        kill -KILL "${pid}" 2>/dev/null || true
    fi
    wait "${pid}" 2>/dev/null || true
}

stop_all() {
    local i grace
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        case "${NAMES[i]}" in
            ingestion | prediction) grace=30 ;; # drain in-flight requests (20 s by default)
            *) grace=10 ;;
        esac
        stop_one "${NAMES[i]}" "${PIDS[i]}" "${grace}"
    done
    PIDS=()
    NAMES=()
    LOGS=()
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ "${#PIDS[@]}" -gt 0 ]]; then
        stop_all
    fi
    if [[ "${rc}" -ne 0 ]]; then
        warn "demo stopped with exit code ${rc}; logs are in ${LOG_DIR#"${AURUMAI_ROOT}"/}/"
    else
        log "demo stopped; data stays in database ${DB_NAME} and ${STATE_DIR#"${AURUMAI_ROOT}"/}/ (make clean-demo removes the latter)"
    fi
    exit "${rc}"
}

on_signal() {
    printf '\n' >&2
    log "interrupted: stopping the demo"
    if [[ "${CHECK}" -eq 1 ]]; then
        exit 130
    fi
    exit 0
}

trap cleanup EXIT
trap on_signal INT TERM

# Dies (showing the log) when a process this script started has exited.
require_running() {
    local name="$1" pid
    pid="$(pid_of "${name}")" || return 0
    if ! is_running "${pid}"; then
        local i
        for i in "${!NAMES[@]}"; do
            [[ "${NAMES[i]}" == "${name}" ]] && show_log_tail "${LOGS[i]}"
        done
        die "${name} (pid ${pid}) exited unexpectedly"
    fi
}

# ---------------------------------------------------------------------------------------------
# Steps

prepare_machine() {
    log "checking build dependencies, PostgreSQL and the mosquitto binary"
    ensure_build_deps
    ensure_postgres
    ensure_mosquitto_binary
    mkdir -p "${LOG_DIR}" "${SPOOL_DIR}" "${MQTT_DIR}"
}

create_database() {
    local exists
    exists="$(pg_psql -d postgres -Atc "select 1 from pg_database where datname = '${DB_NAME}'")"
    if [[ "${exists}" != "1" ]]; then
        log "creating database ${DB_NAME}"
        pg_psql -d postgres -c "create database \"${DB_NAME}\""
    fi
}

build() {
    log "cargo build -p aurum-ingestion -p aurum-prediction -p aurum-simulator (debug profile, shared with the tests)"
    cargo build -p aurum-ingestion -p aurum-prediction -p aurum-simulator
    [[ -x "${INGESTION_BIN}" ]] || die "${INGESTION_BIN} was not built"
    [[ -x "${PREDICTION_BIN}" ]] || die "${PREDICTION_BIN} was not built"
    [[ -x "${SIM_BIN}" ]] || die "${SIM_BIN} was not built"
}

# Mosquitto drops root privileges to its own user (or nobody): that user must be able to write
# the persistence directory. When it cannot reach it (e.g. the checkout is under a private home
# directory), the demo broker keeps running as root, on the loopback interface only.
broker_user_line() {
    [[ "${EUID}" -eq 0 ]] || return 0
    local user=mosquitto
    id "${user}" >/dev/null 2>&1 || user=nobody
    if have runuser && chown -R "${user}" "${MQTT_DIR}" 2>/dev/null \
        && runuser -u "${user}" -- test -w "${MQTT_DIR}" -a -x "${MQTT_DIR}" 2>/dev/null; then
        return 0
    fi
    chown -R root "${MQTT_DIR}" 2>/dev/null || true
    printf '\n# Added by demo.sh: user %s cannot write %s, so the broker stays root.\nuser root\n' \
        "${user}" "${MQTT_DIR}"
}

start_broker() {
    local port="$1" template="${AURUMAI_ROOT}/deploy/mosquitto/demo.conf" conf
    [[ -f "${template}" ]] || die "missing ${template}"
    conf="$(<"${template}")"
    conf="${conf//@PORT@/"${port}"}"
    conf="${conf//@DIR@/"${MQTT_DIR}"}"
    {
        printf '# Generated by deploy/scripts/demo.sh from deploy/mosquitto/demo.conf; edits are overwritten.\n'
        printf '%s\n' "${conf}"
        broker_user_line
    } >"${MQTT_CONF}"
    start_bg mosquitto "${LOG_DIR}/mosquitto.log" mosquitto -c "${MQTT_CONF}"
    if ! wait_tcp 127.0.0.1 "${port}" 15; then
        show_log_tail "${LOG_DIR}/mosquitto.log"
        die "the demo broker did not accept connections on 127.0.0.1:${port}"
    fi
    require_running mosquitto
}

# wait_ready URL TIMEOUT NAME: like wait_http, but gives up as soon as NAME has exited.
wait_ready() {
    local url="$1" timeout="$2" name="$3"
    local deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null --max-time 2 "${url}" 2>/dev/null; do
        require_running "${name}"
        if ((SECONDS >= deadline)); then
            show_log_tail "${LOG_DIR}/${name}.log"
            curl -sS --max-time 2 "${url}" >&2 || true
            printf '\n' >&2
            die "${url} was not ready within ${timeout}s"
        fi
        sleep 0.5
    done
}

register_machine() {
    local id="$1" type="$2" site="$3" name="$4" body code out
    body="$(printf '{"id":"%s","machine_type":"%s","site":"%s","name":"%s"}' "${id}" "${type}" "${site}" "${name}")"
    out="$(mktemp)"
    code="$(curl -sS -o "${out}" -w '%{http_code}' --max-time 10 \
        -X POST "${INGESTION_URL}/v1/machines" \
        -H 'Content-Type: application/json' \
        -H "X-Aurum-Tenant: ${TENANT}" \
        --data "${body}")" || code=000
    case "${code}" in
        201) log "registered ${id} (${type}, site ${site})" ;;
        409) log "${id} was already registered" ;;
        *)
            cat "${out}" >&2 || true
            printf '\n' >&2
            rm -f "${out}"
            die "registering ${id} failed with HTTP ${code}"
            ;;
    esac
    rm -f "${out}"
}

# A model learned from simulated run-to-failure runs (field lifecycle), evaluated on held-out
# runs; trained once and kept in .aurumai/.
train_model() {
    if [[ -s "${MODEL_FILE}" ]]; then
        log "using the model in ${MODEL_FILE#"${AURUMAI_ROOT}"/} (delete it to train again)"
        return 0
    fi
    local runs="${STATE_DIR}/runs.csv"
    log "generating 36 simulated run-to-failure runs for training"
    "${SIM_BIN}" dataset --runs 36 --machines 9 --interval-s 600 --seed 21 --out "${runs}" \
        >>"${LOG_DIR}/training.log" 2>&1 || die "dataset generation failed; see ${LOG_DIR}/training.log"
    log "training the model (about a minute; figures on held-out runs in ${LOG_DIR#"${AURUMAI_ROOT}"/}/training.log)"
    "${PREDICTION_BIN}" train --data "${runs}" --out "${MODEL_FILE}.tmp" --every-k-rows 6 \
        --model-version "demo-$(date -u +%Y%m%d)" >>"${LOG_DIR}/training.log" 2>&1 \
        || die "training failed; see ${LOG_DIR}/training.log"
    mv "${MODEL_FILE}.tmp" "${MODEL_FILE}"
}

telemetry_rows() {
    pg_psql -d "${DB_NAME}" -Atc 'select count(*) from ingestion.telemetry' 2>/dev/null
}

prediction_rows() {
    pg_psql -d "${DB_NAME}" -Atc 'select count(*) from prediction.predictions' 2>/dev/null
}

model_version() {
    curl -fsS --max-time 2 "${PREDICTION_URL}/v1/models" 2>/dev/null \
        | sed -n 's/.*"serving":"\([^"]*\)".*/\1/p'
}

write_demo_env() {
    local tmp="${DEMO_ENV}.tmp"
    {
        printf '# Written by deploy/scripts/demo.sh; valid while the demo runs.\n'
        printf 'AURUM_INGESTION_URL=%s\n' "${INGESTION_URL}"
        printf 'AURUM_PREDICTION_URL=%s\n' "${PREDICTION_URL}"
        printf 'AURUM_MQTT_URL=%s\n' "${MQTT_URL}"
        printf 'AURUM_TENANT=%s\n' "${TENANT}"
        printf 'AURUM_DATABASE_URL=postgres://%s@%s:%s/%s\n' \
            "${AURUMAI_PG_SUPERUSER}" "${AURUMAI_PG_HOST}" "${AURUMAI_PG_PORT}" "${DB_NAME}"
        printf 'AURUM_TELEMETRY_TOPIC_PATTERN=aurum/v1/%s/{machine}/telemetry\n' "${TENANT}"
    } >"${tmp}"
    mv "${tmp}" "${DEMO_ENV}"
}

print_banner() {
    local rel_env="${DEMO_ENV#"${AURUMAI_ROOT}"/}" stop_hint="Press Ctrl-C to stop the demo."
    [[ "${CHECK}" -eq 0 ]] || stop_hint="(--check: stops once telemetry is stored and scored.)"
    cat <<EOF

================================================================================
 AurumAI demo is running (tenant: ${TENANT})

   Ingestion API   ${INGESTION_URL}   (health: /healthz, /readyz; metrics: /metrics)
   Prediction API  ${PREDICTION_URL}   (model $(model_version))
   MQTT broker     ${MQTT_URL}   (topic: aurum/v1/${TENANT}/{machine}/telemetry)
   Database        postgres://${AURUMAI_PG_SUPERUSER}@${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT}/${DB_NAME}
   Environment     ${rel_env}   (source it: set -a; . ${rel_env}; set +a)
   Logs            ${LOG_DIR#"${AURUMAI_ROOT}"/}/

 Try:

   # the registered machines
   curl -s -H 'X-Aurum-Tenant: ${TENANT}' ${INGESTION_URL}/v1/machines

   # TRUCK-21's vibration over the last hour, in 1-minute buckets
   curl -s -H 'X-Aurum-Tenant: ${TENANT}' '${INGESTION_URL}/v1/machines/TRUCK-21/telemetry?metric=vibration&step=1m'

   # every machine's risk, remaining useful life and open alerts, worst first
   curl -s -H 'X-Aurum-Tenant: ${TENANT}' ${PREDICTION_URL}/v1/fleet/health

   # open alerts; acknowledge one as a named person
   curl -s -H 'X-Aurum-Tenant: ${TENANT}' '${PREDICTION_URL}/v1/alerts?state=open'
   curl -s -X POST -H 'X-Aurum-Tenant: ${TENANT}' -H 'X-Aurum-User: planner@demo' ${PREDICTION_URL}/v1/alerts/1/ack

   # CO2e of the last day, scope 1 (fuel) and 2 (electricity), and the CSV report
   curl -s -H 'X-Aurum-Tenant: ${TENANT}' "${PREDICTION_URL}/v1/esg/summary?from=\$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)&to=\$(date -u +%Y-%m-%dT%H:%M:%SZ)"

   # publish one message yourself (MQTT v5, QoS 1)
   mosquitto_pub -V mqttv5 -h 127.0.0.1 -p ${MQTT_PORT} -q 1 -t aurum/v1/${TENANT}/TRUCK-21/telemetry -D publish content-type application/json -m "{\\"machine_id\\":\\"TRUCK-21\\",\\"seq\\":\$(date +%s%N),\\"ts\\":\\"\$(date -u +%Y-%m-%dT%H:%M:%SZ)\\",\\"metrics\\":{\\"rpm\\":1650.0,\\"vibration\\":3.1}}"

 Logins arrive with the gateway in a later release; until then the tenant is named by the
 X-Aurum-Tenant header. ${stop_hint}
================================================================================

EOF
}

# ---------------------------------------------------------------------------------------------
# Main

prepare_machine
create_database
build

MQTT_PORT="$(preferred_port "${AURUMAI_DEMO_MQTT_PORT:-1883}")"
MQTT_URL="mqtt://127.0.0.1:${MQTT_PORT}"
log "starting the demo broker on 127.0.0.1:${MQTT_PORT}"
start_broker "${MQTT_PORT}"

HTTP_PORT="$(preferred_port "${AURUMAI_DEMO_HTTP_PORT:-8081}")"
INGESTION_URL="http://127.0.0.1:${HTTP_PORT}"
PREDICTION_PORT="$(preferred_port "${AURUMAI_DEMO_PREDICTION_PORT:-8082}")"
PREDICTION_URL="http://127.0.0.1:${PREDICTION_PORT}"

train_model

# The ingestion service's configuration (see docs/configuration.md). Variables already set in
# the environment (e.g. AURUM_TELEMETRY__OTLP_ENDPOINT) are kept unless named here.
INGESTION_ENV=(
    AURUM_PROFILE=dev
    AURUM_HTTP__HOST=127.0.0.1
    "AURUM_HTTP__PORT=${HTTP_PORT}"
    "AURUM_DATABASE__HOST=${AURUMAI_PG_HOST}"
    "AURUM_DATABASE__PORT=${AURUMAI_PG_PORT}"
    "AURUM_DATABASE__NAME=${DB_NAME}"
    "AURUM_MQTT__URL=${MQTT_URL}"
    AURUM_MQTT__CLIENT_ID=aurum-ingestion-demo
    "AURUM_INGEST__SPOOL_DIR=${SPOOL_DIR}"
    "AURUM_FEATURES__PREDICTION_URL=${PREDICTION_URL}"
    AURUM_TELEMETRY__LOG_FORMAT=pretty
    "AURUM_TELEMETRY__LOG_LEVEL=${AURUM_TELEMETRY__LOG_LEVEL:-info}"
)

log "migrating database ${DB_NAME} (as ${AURUMAI_PG_SUPERUSER})"
env "${INGESTION_ENV[@]}" "AURUM_DATABASE__ADMIN_USER=${AURUMAI_PG_SUPERUSER}" \
    "${INGESTION_BIN}" migrate 2>&1 | tee -a "${LOG_DIR}/ingestion.log"

# The prediction service; the first start registers and activates the trained model.
PREDICTION_ENV=(
    AURUM_PROFILE=dev
    AURUM_HTTP__HOST=127.0.0.1
    "AURUM_HTTP__PORT=${PREDICTION_PORT}"
    "AURUM_DATABASE__HOST=${AURUMAI_PG_HOST}"
    "AURUM_DATABASE__PORT=${AURUMAI_PG_PORT}"
    "AURUM_DATABASE__NAME=${DB_NAME}"
    "AURUM_PREDICTION__BOOTSTRAP_MODEL=${MODEL_FILE}"
    AURUM_TELEMETRY__LOG_FORMAT=pretty
    "AURUM_TELEMETRY__LOG_LEVEL=${AURUM_TELEMETRY__LOG_LEVEL:-info}"
)
start_bg prediction "${LOG_DIR}/prediction.log" env "${PREDICTION_ENV[@]}" "${PREDICTION_BIN}" serve
log "waiting for ${PREDICTION_URL}/readyz"
wait_ready "${PREDICTION_URL}/readyz" "${READY_TIMEOUT_S}" prediction

start_bg ingestion "${LOG_DIR}/ingestion.log" env "${INGESTION_ENV[@]}" "${INGESTION_BIN}" serve
log "waiting for ${INGESTION_URL}/readyz"
wait_ready "${INGESTION_URL}/readyz" "${READY_TIMEOUT_S}" ingestion

register_machine TRUCK-21 haul_truck pit-north "Haul truck 21"
register_machine MILL-3 grinding_mill concentrator "Grinding mill 3"
register_machine BOILER-7 industrial_boiler power-house "Boiler 7"

write_demo_env

ROWS_BEFORE="$(telemetry_rows || true)"
[[ "${ROWS_BEFORE}" =~ ^[0-9]+$ ]] || ROWS_BEFORE=0
SCORED_BEFORE="$(prediction_rows || true)"
[[ "${SCORED_BEFORE}" =~ ^[0-9]+$ ]] || SCORED_BEFORE=0

start_bg simulator "${LOG_DIR}/simulator.log" "${SIM_BIN}" run --seed-fleet \
    --tenant "${TENANT}" --transport mqtt --mqtt-url "${MQTT_URL}" \
    --rate 1 --time-scale 60 --labels-csv "${LABELS_CSV}"

print_banner

if [[ "${CHECK}" -eq 1 ]]; then
    log "check: waiting up to ${CHECK_TIMEOUT_S}s for new telemetry rows and new predictions"
    deadline=$((SECONDS + CHECK_TIMEOUT_S))
    rows=0
    while :; do
        rows="$(telemetry_rows || true)"
        [[ "${rows}" =~ ^[0-9]+$ ]] || rows=0
        scored="$(prediction_rows || true)"
        [[ "${scored}" =~ ^[0-9]+$ ]] || scored=0
        # New in this run: a database kept from an earlier demo must not pass the check alone.
        if ((rows > ROWS_BEFORE && scored > SCORED_BEFORE)); then
            break
        fi
        require_running mosquitto
        require_running ingestion
        require_running prediction
        require_running simulator
        if ((SECONDS >= deadline)); then
            show_log_tail "${LOG_DIR}/simulator.log"
            show_log_tail "${LOG_DIR}/ingestion.log"
            show_log_tail "${LOG_DIR}/prediction.log"
            die "within ${CHECK_TIMEOUT_S}s: $((rows - ROWS_BEFORE)) telemetry rows stored, $((scored - SCORED_BEFORE)) predictions made (both must be > 0)"
        fi
        sleep 1
    done
    printf 'demo check passed: %s telemetry rows (%s new in this run), %s predictions (%s new)\n' \
        "${rows}" "$((rows - ROWS_BEFORE))" "${scored}" "$((scored - SCORED_BEFORE))"
    exit 0
fi

# Foreground until Ctrl-C. The broker and the ingestion service must stay up; the simulator may
# end on its own (the rest of the demo stays usable).
sim_reported=0
while :; do
    require_running mosquitto
    require_running ingestion
    require_running prediction
    if [[ "${sim_reported}" -eq 0 ]] && ! is_running "$(pid_of simulator)"; then
        warn "the simulator exited; see ${LOG_DIR#"${AURUMAI_ROOT}"/}/simulator.log (the rest of the demo keeps running)"
        sim_reported=1
    fi
    sleep 1
done
