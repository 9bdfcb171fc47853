#!/usr/bin/env bash
# AurumAI local demo (`make demo`): PostgreSQL + a demo Mosquitto broker (per-device accounts
# and ACLs) + the auth, ingestion, prediction and gateway services + one simulated device per
# machine, in the foreground until Ctrl-C.
#
#   deploy/scripts/demo.sh           run until Ctrl-C, then stop what this script started
#   deploy/scripts/demo.sh --check   run until telemetry is stored and scored, then stop (smoke test)
#
# Installs what is missing (build dependencies, PostgreSQL, the mosquitto binary) and starts
# PostgreSQL when it is stopped; services that already run are left alone. Everything the demo
# writes lives in .aurumai/ (`make clean-demo` removes it), including the model trained on
# simulated run-to-failure data the first time (about a minute; reused afterwards) and the
# demo's generated secrets (.aurumai/secrets/, readable by this user only).
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
  AURUMAI_DEMO_AUTH_PORT   preferred auth (OpenID provider) port (default: 8083; a free one if taken)
  AURUMAI_DEMO_GATEWAY_PORT  preferred gateway port (default: 8080; a free one if taken)
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
MODEL_FILE="${STATE_DIR}/model.json"
SECRETS_DIR="${STATE_DIR}/secrets"
AUTH_CONFIG="${STATE_DIR}/auth.toml"
DEVICES_DIR="${STATE_DIR}/devices"
DEMO_MACHINES=(TRUCK-21 MILL-3 BOILER-7)
ADMIN_USER="admin@${TENANT}"
DEMO_CLIENT_ID=aurum-demo
DEMO_REDIRECT_URI=http://127.0.0.1:8765/callback
CHECK_TIMEOUT_S=90
READY_TIMEOUT_S=120

cd "${AURUMAI_ROOT}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "${TARGET_DIR}" == /* ]] || TARGET_DIR="${AURUMAI_ROOT}/${TARGET_DIR}"
INGESTION_BIN="${TARGET_DIR}/debug/aurum-ingestion"
PREDICTION_BIN="${TARGET_DIR}/debug/aurum-prediction"
SIM_BIN="${TARGET_DIR}/debug/aurum-sim"
AUTH_BIN="${TARGET_DIR}/debug/aurum-auth"
GATEWAY_BIN="${TARGET_DIR}/debug/aurum-gateway"

# ---------------------------------------------------------------------------------------------
# Processes this script started: stopped by pid on exit, newest first. Nothing else is touched.

PIDS=()
NAMES=()
LOGS=()

start_bg() {
    local name="$1" logfile="$2"
    shift 2
    # A session of its own: Ctrl-C reaches this script only, which then stops everything in
    # order (the gateway first, the broker last) instead of every process dying at once.
    setsid "$@" >>"${logfile}" 2>&1 &
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
            ingestion | prediction | auth | gateway) grace=30 ;; # drain in-flight requests (20 s by default)
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
    (umask 077 && mkdir -p "${SECRETS_DIR}" "${DEVICES_DIR}")
    chmod 700 "${SECRETS_DIR}" "${DEVICES_DIR}"
    # Generated now, so that services can read them from files (AURUM_..._FILE).
    local name
    for name in admin-password demo-client ingestion-client broker-admin broker-ingestion key-encryption-key; do
        secret "${name}" >/dev/null
    done
}

# secret NAME: the demo's secret NAME, generated (256 random bits) on first use and kept in
# .aurumai/secrets/NAME (mode 600). Never printed by this script, except the admin login that
# the banner shows on purpose.
secret() {
    local file="${SECRETS_DIR}/$1"
    if [[ ! -s "${file}" ]]; then
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"${file}")
    fi
    cat "${file}"
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
    log "cargo build of the services and the simulator (debug profile, shared with the tests)"
    cargo build -p aurum-ingestion -p aurum-prediction -p aurum-simulator -p aurum-auth -p aurum-gateway
    [[ -x "${AUTH_BIN}" ]] || die "${AUTH_BIN} was not built"
    [[ -x "${GATEWAY_BIN}" ]] || die "${GATEWAY_BIN} was not built"
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

# The dynamic-security plugin's first state: the administrator (used by the auth service to
# add and remove devices) and the ingestion account. Kept across runs with the devices added
# since; `make clean-demo` starts over.
init_broker_state() {
    local state="${MQTT_DIR}/dynamic-security.json"
    [[ -s "${state}" ]] && return 0
    log "creating the broker's administrator and ingestion accounts"
    # The chart's own init script: the same first state here as in a cluster.
    secret broker-admin >/dev/null
    secret broker-ingestion >/dev/null
    python3 "${AURUMAI_ROOT}/helm/aurumai/files/dynsec-init.py" "${state}" \
        --admin-user aurum-admin --admin-password-file "${SECRETS_DIR}/broker-admin" \
        --ingestion-user aurum-ingestion --ingestion-password-file "${SECRETS_DIR}/broker-ingestion" \
        || die "cannot write ${state}"
}

start_broker() {
    local port="$1" template="${AURUMAI_ROOT}/deploy/mosquitto/demo.conf" conf plugin
    [[ -f "${template}" ]] || die "missing ${template}"
    plugin="$(dynsec_plugin)" || die "Mosquitto's dynamic-security plugin is missing (apt install mosquitto)"
    init_broker_state
    conf="$(<"${template}")"
    conf="${conf//@PORT@/"${port}"}"
    conf="${conf//@DIR@/"${MQTT_DIR}"}"
    conf="${conf//@DYNSEC_PLUGIN@/"${plugin}"}"
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

# An access token of the demo client (client_credentials; tenant demo, role admin). The
# secret goes to curl in a config file on stdin, not on its command line.
demo_token() {
    local out
    out="$(printf 'user = "%s:%s"\n' "${DEMO_CLIENT_ID}" "$(secret demo-client)" \
        | curl -fsS --max-time 10 -K - -d grant_type=client_credentials -d audience=aurumai-api \
            "${AUTH_URL}/token")" || die "the demo client could not get a token from ${AUTH_URL}/token"
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"${out}"
}

# api METHOD PATH [BODY]: a call through the gateway with the demo token; prints the body and
# leaves the status in API_STATUS.
api() {
    local method="$1" path="$2" body="${3:-}" out
    out="$(mktemp)"
    API_STATUS="$(printf 'header = "Authorization: Bearer %s"\n' "${TOKEN}" \
        | curl -sS -o "${out}" -w '%{http_code}' --max-time 10 -K - -X "${method}" \
            -H 'Content-Type: application/json' ${body:+--data "${body}"} \
            "${GATEWAY_URL}/api/v1${path}")" || API_STATUS=000
    cat "${out}"
    rm -f "${out}"
}

# The device of one machine: provisioned through the gateway the first time (the password is
# shown once, so it is kept in .aurumai/devices/ID.env, mode 600) and reused afterwards.
ensure_device() {
    local id="$1" file="${DEVICES_DIR}/$1.env" body listed old
    [[ -s "${file}" ]] && return 0
    body="$(api POST /devices "{\"machine_id\":\"${id}\"}")"
    if [[ "${API_STATUS}" == 409 ]]; then
        # A device from an earlier demo whose credentials were removed: revoke and replace it.
        listed="$(api GET /devices)"
        old="$(python3 -c 'import json,sys; m=sys.argv[1]; print(next(d["id"] for d in json.load(sys.stdin)["devices"] if d["machine_id"]==m and not d["revoked_at"]))' "${id}" <<<"${listed}")"
        api DELETE "/devices/${old}" >/dev/null
        body="$(api POST /devices "{\"machine_id\":\"${id}\"}")"
    fi
    [[ "${API_STATUS}" == 201 ]] || die "provisioning the device of ${id} failed with HTTP ${API_STATUS}: ${body}"
    (umask 077 && python3 -c 'import json,sys; d=json.load(sys.stdin); print("AURUM_MQTT_USERNAME=%s\nAURUM_MQTT_PASSWORD=%s" % (d["username"], d["password"]))' <<<"${body}" >"${file}")
    log "provisioned the device of ${id} (credentials in ${file#"${AURUMAI_ROOT}"/})"
}

register_machine() {
    local id="$1" type="$2" site="$3" name="$4" body code
    body="$(printf '{"id":"%s","profile":"%s","site":"%s","name":"%s"}' "${id}" "${type}" "${site}" "${name}")"
    api POST /machines "${body}" >/dev/null
    code="${API_STATUS}"
    case "${code}" in
        201) log "registered ${id} (${type}, site ${site})" ;;
        409) log "${id} was already registered" ;;
        *) die "registering ${id} failed with HTTP ${code}" ;;
    esac
}

# A profile from the simulator's examples, created for the demo tenant unless it exists.
ensure_profile() {
    local id="$1" file="${AURUMAI_ROOT}/services/simulator/examples/profiles/$1.json" body
    body="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["id"]=sys.argv[2]; print(json.dumps(d))' "${file}" "${id}")" \
        || die "cannot read ${file}"
    api POST /profiles "${body}" >/dev/null
    case "${API_STATUS}" in
        201) log "created the ${id} profile" ;;
        409) log "the ${id} profile exists already" ;;
        *) die "creating the ${id} profile failed with HTTP ${API_STATUS}" ;;
    esac
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
    api GET /models 2>/dev/null | sed -n 's/.*"serving":"\([^"]*\)".*/\1/p'
}

# The auth service's configuration: issuer, the first administrator, the demo client and
# ingestion's service client, and the broker administrator account for device provisioning.
# Holds secrets: written with mode 600 and read by the auth service only (AURUM_CONFIG).
write_auth_config() {
    local tmp="${AUTH_CONFIG}.tmp"
    (
        umask 077
        cat >"${tmp}" <<EOF
# Written by deploy/scripts/demo.sh on every start; holds the demo's secrets.
[auth]
issuer = "${AUTH_URL}"
key_encryption_key = "$(secret key-encryption-key)"

[auth.bootstrap_admin]
tenant = "${TENANT}"
username = "${ADMIN_USER}"
password = "$(secret admin-password)"

[[auth.clients]]
client_id = "${DEMO_CLIENT_ID}"
secret = "$(secret demo-client)"
name = "AurumAI demo client"
redirect_uris = ["${DEMO_REDIRECT_URI}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
audiences = ["aurumai-api"]
tenant = "${TENANT}"
roles = ["admin"]

[[auth.clients]]
client_id = "aurum-ingestion"
secret = "$(secret ingestion-client)"
name = "AurumAI ingestion service"
grant_types = ["client_credentials"]
audiences = ["aurumai-prediction"]

[devices]
broker_timeout_ms = 5000

[devices.broker]
url = "${MQTT_URL}"
client_id = "aurum-auth-demo"
username = "aurum-admin"
password = "$(secret broker-admin)"
keep_alive_s = 30
session_expiry_s = 0
EOF
    )
    mv "${tmp}" "${AUTH_CONFIG}"
}

write_demo_env() {
    local tmp="${DEMO_ENV}.tmp"
    {
        printf '# Written by deploy/scripts/demo.sh; valid while the demo runs.\n'
        printf 'AURUM_GATEWAY_URL=%s\n' "${GATEWAY_URL}"
        printf 'AURUM_AUTH_URL=%s\n' "${AUTH_URL}"
        printf 'AURUM_ADMIN_USER=%s\n' "${ADMIN_USER}"
        printf 'AURUM_ADMIN_PASSWORD=%s\n' "$(secret admin-password)"
        printf 'AURUM_DEMO_CLIENT_ID=%s\n' "${DEMO_CLIENT_ID}"
        printf 'AURUM_DEMO_CLIENT_SECRET=%s\n' "$(secret demo-client)"
        printf 'AURUM_DEMO_REDIRECT_URI=%s\n' "${DEMO_REDIRECT_URI}"
        # The first demo device's broker login (each simulated machine has its own).
        cat "${DEVICES_DIR}/${DEMO_MACHINES[0]}.env"
        printf 'AURUM_INGESTION_URL=%s\n' "${INGESTION_URL}"
        printf 'AURUM_PREDICTION_URL=%s\n' "${PREDICTION_URL}"
        printf 'AURUM_MQTT_URL=%s\n' "${MQTT_URL}"
        printf 'AURUM_TENANT=%s\n' "${TENANT}"
        printf 'AURUM_DATABASE_URL=postgres://%s@%s:%s/%s\n' \
            "${AURUMAI_PG_SUPERUSER}" "${AURUMAI_PG_HOST}" "${AURUMAI_PG_PORT}" "${DB_NAME}"
        printf 'AURUM_TELEMETRY_TOPIC_PATTERN=aurum/v1/%s/{machine}/telemetry\n' "${TENANT}"
    } >"${tmp}"
    chmod 600 "${tmp}"
    mv "${tmp}" "${DEMO_ENV}"
}

print_banner() {
    local rel_env="${DEMO_ENV#"${AURUMAI_ROOT}"/}" stop_hint="Press Ctrl-C to stop the demo."
    [[ "${CHECK}" -eq 0 ]] || stop_hint="(--check: stops once telemetry is stored and scored.)"
    cat <<EOF

================================================================================
 AurumAI demo is running (tenant: ${TENANT})

   Gateway (the API)  ${GATEWAY_URL}/api/v1   (OpenAPI: /api/v1/openapi.json, docs: /api/v1/docs)
   Login              ${ADMIN_USER} / $(secret admin-password)
                      at ${AUTH_URL}/authorize (OpenID provider; discovery:
                      ${AUTH_URL}/.well-known/openid-configuration)
   Demo OAuth client  ${DEMO_CLIENT_ID} (secret in ${rel_env}; redirect ${DEMO_REDIRECT_URI})
   MQTT broker        ${MQTT_URL}   (one account per device: ${DEVICES_DIR#"${AURUMAI_ROOT}"/}/)
   Model              $(model_version)
   Database           postgres://${AURUMAI_PG_SUPERUSER}@${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT}/${DB_NAME}
   Environment        ${rel_env}   (source it: set -a; . ${rel_env}; set +a)
   Logs               ${LOG_DIR#"${AURUMAI_ROOT}"/}/

 Try (after sourcing the environment):

   # a token for the demo client (tenant ${TENANT}, admin)
   TOKEN=\$(curl -s -u "\$AURUM_DEMO_CLIENT_ID:\$AURUM_DEMO_CLIENT_SECRET" -d grant_type=client_credentials \$AURUM_AUTH_URL/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

   # every machine's risk, remaining useful life and open alerts, worst first
   curl -s -H "Authorization: Bearer \$TOKEN" \$AURUM_GATEWAY_URL/api/v1/fleet/health

   # TRUCK-21's vibration over the last hour, in 1-minute buckets
   curl -s -H "Authorization: Bearer \$TOKEN" "\$AURUM_GATEWAY_URL/api/v1/machines/TRUCK-21/telemetry?metric=vibration&step=1m"

   # open alerts, the devices, and the audit log of every call above
   curl -s -H "Authorization: Bearer \$TOKEN" "\$AURUM_GATEWAY_URL/api/v1/alerts?state=open"
   curl -s -H "Authorization: Bearer \$TOKEN" \$AURUM_GATEWAY_URL/api/v1/devices
   curl -s -H "Authorization: Bearer \$TOKEN" \$AURUM_GATEWAY_URL/api/v1/audit

   # a kind of machine of the tenant's own (docs/profiles.md): its profile, then a message of
   # PUMP-1's (rpm is no metric of a pump: that reading is quarantined, the others are stored)
   curl -s -H "Authorization: Bearer \$TOKEN" \$AURUM_GATEWAY_URL/api/v1/profiles/centrifugal_pump
   curl -s -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \$AURUM_GATEWAY_URL/api/v1/telemetry -d "{\\"messages\\":[{\\"machine_id\\":\\"PUMP-1\\",\\"seq\\":\$(date +%s),\\"ts\\":\\"\$(date -u +%Y-%m-%dT%H:%M:%SZ)\\",\\"metrics\\":{\\"discharge_pressure\\":12.5,\\"power_kw\\":180,\\"rpm\\":1480}}]}"

   # publish as TRUCK-21's device (its own topic only: other topics are refused)
   mosquitto_pub -V mqttv5 -h 127.0.0.1 -p ${MQTT_PORT} -u "\$AURUM_MQTT_USERNAME" -P "\$AURUM_MQTT_PASSWORD" -q 1 -t aurum/v1/${TENANT}/TRUCK-21/telemetry -D publish content-type application/json -m "{\\"machine_id\\":\\"TRUCK-21\\",\\"seq\\":\$(date +%s%N),\\"ts\\":\\"\$(date -u +%Y-%m-%dT%H:%M:%SZ)\\",\\"metrics\\":{\\"rpm\\":1650.0,\\"vibration\\":3.1}}"

 Every call needs a token; the services behind the gateway verify it again.
 ${stop_hint}
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
AUTH_PORT="$(preferred_port "${AURUMAI_DEMO_AUTH_PORT:-8083}")"
AUTH_URL="http://127.0.0.1:${AUTH_PORT}"
GATEWAY_PORT="$(preferred_port "${AURUMAI_DEMO_GATEWAY_PORT:-8080}")"
GATEWAY_URL="http://127.0.0.1:${GATEWAY_PORT}"

train_model

# What every service shares: the database and logging (see docs/configuration.md). Variables
# already set in the environment (e.g. AURUM_TELEMETRY__OTLP_ENDPOINT) are kept unless named.
COMMON_ENV=(
    AURUM_PROFILE=dev
    AURUM_HTTP__HOST=127.0.0.1
    "AURUM_DATABASE__HOST=${AURUMAI_PG_HOST}"
    "AURUM_DATABASE__PORT=${AURUMAI_PG_PORT}"
    "AURUM_DATABASE__NAME=${DB_NAME}"
    AURUM_TELEMETRY__LOG_FORMAT=pretty
    "AURUM_TELEMETRY__LOG_LEVEL=${AURUM_TELEMETRY__LOG_LEVEL:-info}"
)
# Ingestion, prediction and the gateway verify access tokens against the auth service.
VERIFY_ENV=("AURUM_AUTH__ISSUER=${AUTH_URL}")

INGESTION_ENV=(
    "${COMMON_ENV[@]}" "${VERIFY_ENV[@]}"
    "AURUM_HTTP__PORT=${HTTP_PORT}"
    "AURUM_MQTT__URL=${MQTT_URL}"
    AURUM_MQTT__CLIENT_ID=aurum-ingestion-demo
    AURUM_MQTT__USERNAME=aurum-ingestion
    "AURUM_MQTT__PASSWORD_FILE=${SECRETS_DIR}/broker-ingestion"
    "AURUM_INGEST__SPOOL_DIR=${SPOOL_DIR}"
    "AURUM_FEATURES__PREDICTION_URL=${PREDICTION_URL}"
    "AURUM_FEATURES__CLIENT__TOKEN_URL=${AUTH_URL}/token"
    AURUM_FEATURES__CLIENT__CLIENT_ID=aurum-ingestion
    "AURUM_FEATURES__CLIENT__CLIENT_SECRET_FILE=${SECRETS_DIR}/ingestion-client"
)

# as_migration_role NAME BIN COMMAND ENV...: a one-off command of a service's binary as the
# superuser (the migration role), with the service's environment.
as_migration_role() {
    local name="$1" bin="$2" command="$3"
    shift 3
    env "$@" "AURUM_DATABASE__ADMIN_USER=${AURUMAI_PG_SUPERUSER}" \
        "${bin}" "${command}" 2>&1 | tee -a "${LOG_DIR}/${name}.log"
}

# migrate_schema NAME BIN ENV...: the service's own schema (each service migrates only its own).
migrate_schema() {
    local name="$1" bin="$2"
    shift 2
    log "migrating the ${name} schema of ${DB_NAME} (as ${AURUMAI_PG_SUPERUSER})"
    as_migration_role "${name}" "${bin}" migrate "$@"
}

# The OpenID provider first: everything else verifies its tokens.
write_auth_config
AUTH_ENV=("${COMMON_ENV[@]}" "AURUM_HTTP__PORT=${AUTH_PORT}" "AURUM_CONFIG=${AUTH_CONFIG}")
migrate_schema ingestion "${INGESTION_BIN}" "${INGESTION_ENV[@]}"
migrate_schema auth "${AUTH_BIN}" "${AUTH_ENV[@]}"
start_bg auth "${LOG_DIR}/auth.log" env "${AUTH_ENV[@]}" "${AUTH_BIN}" serve
log "waiting for ${AUTH_URL}/readyz"
wait_ready "${AUTH_URL}/readyz" "${READY_TIMEOUT_S}" auth

# The prediction service; the first start registers and activates the trained model.
PREDICTION_ENV=(
    "${COMMON_ENV[@]}" "${VERIFY_ENV[@]}"
    "AURUM_HTTP__PORT=${PREDICTION_PORT}"
    "AURUM_PREDICTION__BOOTSTRAP_MODEL=${MODEL_FILE}"
)
migrate_schema prediction "${PREDICTION_BIN}" "${PREDICTION_ENV[@]}"
start_bg prediction "${LOG_DIR}/prediction.log" env "${PREDICTION_ENV[@]}" "${PREDICTION_BIN}" serve
log "waiting for ${PREDICTION_URL}/readyz"
wait_ready "${PREDICTION_URL}/readyz" "${READY_TIMEOUT_S}" prediction

start_bg ingestion "${LOG_DIR}/ingestion.log" env "${INGESTION_ENV[@]}" "${INGESTION_BIN}" serve
log "waiting for ${INGESTION_URL}/readyz"
wait_ready "${INGESTION_URL}/readyz" "${READY_TIMEOUT_S}" ingestion

GATEWAY_ENV=(
    "${COMMON_ENV[@]}" "${VERIFY_ENV[@]}"
    "AURUM_HTTP__PORT=${GATEWAY_PORT}"
    "AURUM_UPSTREAMS__INGESTION__URL=${INGESTION_URL}"
    "AURUM_UPSTREAMS__PREDICTION__URL=${PREDICTION_URL}"
    "AURUM_UPSTREAMS__AUTH__URL=${AUTH_URL}"
)
migrate_schema gateway "${GATEWAY_BIN}" "${GATEWAY_ENV[@]}"
# Audit retention is the migration role's (the gateway's role may not delete history); the
# chart runs it daily, the demo once at start.
log "audit retention (as ${AURUMAI_PG_SUPERUSER})"
as_migration_role gateway "${GATEWAY_BIN}" audit-retention "${GATEWAY_ENV[@]}"
start_bg gateway "${LOG_DIR}/gateway.log" env "${GATEWAY_ENV[@]}" "${GATEWAY_BIN}" serve
log "waiting for ${GATEWAY_URL}/readyz"
wait_ready "${GATEWAY_URL}/readyz" "${READY_TIMEOUT_S}" gateway

TOKEN="$(demo_token)"
register_machine TRUCK-21 haul_truck pit-north "Haul truck 21"
register_machine MILL-3 grinding_mill concentrator "Grinding mill 3"
register_machine BOILER-7 industrial_boiler power-house "Boiler 7"
# A kind of machine of the tenant's own, defined as data (docs/profiles.md).
ensure_profile centrifugal_pump
ensure_profile belt_conveyor
register_machine PUMP-1 centrifugal_pump concentrator "Feed pump 1"
for machine in "${DEMO_MACHINES[@]}"; do
    ensure_device "${machine}"
done

write_demo_env

ROWS_BEFORE="$(telemetry_rows || true)"
[[ "${ROWS_BEFORE}" =~ ^[0-9]+$ ]] || ROWS_BEFORE=0
SCORED_BEFORE="$(prediction_rows || true)"
[[ "${SCORED_BEFORE}" =~ ^[0-9]+$ ]] || SCORED_BEFORE=0

# One simulated device per machine, each logged in with its own broker account (which may
# publish only that machine's topics), like devices in the field.
for machine in "${DEMO_MACHINES[@]}"; do
    start_bg "simulator-${machine}" "${LOG_DIR}/simulator.log" \
        bash -c 'set -a; . "$1"; set +a; shift; exec "$@"' _ "${DEVICES_DIR}/${machine}.env" \
        "${SIM_BIN}" run --seed-fleet --only "${machine}" \
        --tenant "${TENANT}" --transport mqtt --mqtt-url "${MQTT_URL}" \
        --client-id "aurum-sim-${machine}" \
        --rate 1 --time-scale 60 --labels-csv "${STATE_DIR}/labels-${machine}.csv"
done

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
        require_running auth
        require_running ingestion
        require_running prediction
        require_running gateway
        for machine in "${DEMO_MACHINES[@]}"; do
            require_running "simulator-${machine}"
        done
        if ((SECONDS >= deadline)); then
            show_log_tail "${LOG_DIR}/simulator.log"
            show_log_tail "${LOG_DIR}/ingestion.log"
            show_log_tail "${LOG_DIR}/prediction.log"
            die "within ${CHECK_TIMEOUT_S}s: $((rows - ROWS_BEFORE)) telemetry rows stored, $((scored - SCORED_BEFORE)) predictions made (both must be > 0)"
        fi
        sleep 1
    done
    # The gateway is the only way in: no token, no answer; the demo token reads the fleet.
    unauthenticated="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${GATEWAY_URL}/api/v1/fleet/health")"
    [[ "${unauthenticated}" == 401 ]] || die "the gateway answered ${unauthenticated} to a call without a token (expected 401)"
    api GET /fleet/health >/dev/null
    [[ "${API_STATUS}" == 200 ]] || die "GET /api/v1/fleet/health with the demo token answered ${API_STATUS}"
    printf 'demo check passed: %s telemetry rows (%s new in this run), %s predictions (%s new), gateway 401 without a token and 200 with one\n' \
        "${rows}" "$((rows - ROWS_BEFORE))" "${scored}" "$((scored - SCORED_BEFORE))"
    exit 0
fi

# Foreground until Ctrl-C. The broker and the ingestion service must stay up; the simulator may
# end on its own (the rest of the demo stays usable).
sim_reported=0
while :; do
    require_running mosquitto
    require_running auth
    require_running ingestion
    require_running prediction
    require_running gateway
    if [[ "${sim_reported}" -eq 0 ]] && ! is_running "$(pid_of "simulator-${DEMO_MACHINES[0]}")"; then
        warn "a simulated device exited; see ${LOG_DIR#"${AURUMAI_ROOT}"/}/simulator.log (the rest of the demo keeps running)"
        sim_reported=1
    fi
    sleep 1
done
