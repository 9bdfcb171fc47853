# shellcheck shell=bash
# Shared helpers for AurumAI's scripts (demo, deps, CI). Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything here is idempotent: a helper installs or starts only what is missing and leaves
# services that already run alone (except for turning on PostgreSQL's TLS, which the tests need).

# The scripts' own variables start with AURUMAI_, never AURUM_: the services read every AURUM_*
# variable of their environment as configuration.

if [[ -n "${AURUMAI_LIB_SOURCED:-}" ]]; then
    return 0
fi
AURUMAI_LIB_SOURCED=1

# The repository root, found from this file's own location (deploy/scripts/lib.sh).
AURUMAI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export AURUMAI_ROOT

# Daemons' binaries live in sbin (mosquitto, pg_ctlcluster helpers); a non-login PATH may lack it.
case ":${PATH}:" in
    *:/usr/sbin:*) ;;
    *) PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin" ;;
esac
export PATH

# PostgreSQL as the scripts and the tests reach it.
AURUMAI_PG_HOST="${AURUMAI_PG_HOST:-127.0.0.1}"
AURUMAI_PG_PORT="${AURUMAI_PG_PORT:-5432}"
AURUMAI_PG_SUPERUSER="${AURUMAI_PG_SUPERUSER:-postgres}"

# ---------------------------------------------------------------------------------------------
# Logging

if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
    _AURUMAI_C_INFO=$'\033[1;34m'
    _AURUMAI_C_WARN=$'\033[1;33m'
    _AURUMAI_C_ERR=$'\033[1;31m'
    _AURUMAI_C_OFF=$'\033[0m'
else
    _AURUMAI_C_INFO=''
    _AURUMAI_C_WARN=''
    _AURUMAI_C_ERR=''
    _AURUMAI_C_OFF=''
fi

log() {
    printf '%s==>%s %s\n' "${_AURUMAI_C_INFO}" "${_AURUMAI_C_OFF}" "$*" >&2
}

warn() {
    printf '%swarning:%s %s\n' "${_AURUMAI_C_WARN}" "${_AURUMAI_C_OFF}" "$*" >&2
}

die() {
    printf '%serror:%s %s\n' "${_AURUMAI_C_ERR}" "${_AURUMAI_C_OFF}" "$*" >&2
    exit 1
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
    if [[ "${EUID}" -eq 0 ]]; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        die "need root to run: $* (run as root or install sudo)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Debian packages

# Set to 1 (and exported) once `apt-get update` ran, so child scripts of the same run skip it.
AURUMAI_APT_UPDATED="${AURUMAI_APT_UPDATED:-0}"
export AURUMAI_APT_UPDATED

pkg_installed() {
    local status
    status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)"
    [[ "${status}" == "installed" ]]
}

_apt_update_once() {
    if [[ "${AURUMAI_APT_UPDATED}" != "1" ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        AURUMAI_APT_UPDATED=1
        export AURUMAI_APT_UPDATED
    fi
}

# _apt_install NO_START PKG...: installs PKG... When NO_START is 1, package scripts are told not
# to start services (policy-rc.d), so e.g. installing mosquitto does not launch the system broker.
_apt_install() {
    local no_start="$1"
    shift
    [[ "$#" -gt 0 ]] || return 0
    have apt-get || die "apt-get not found: install these packages by hand: $*"
    _apt_update_once
    local policy=/usr/sbin/policy-rc.d
    local made_policy=0
    if [[ "${no_start}" == "1" && ! -e "${policy}" ]]; then
        printf '#!/bin/sh\n# written by AurumAI lib.sh for the duration of an install\nexit 101\n' \
            | as_root tee "${policy}" >/dev/null
        as_root chmod 0755 "${policy}"
        made_policy=1
    fi
    log "apt-get install -y --no-install-recommends $*"
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" || rc=$?
    if [[ "${made_policy}" == "1" ]]; then
        as_root rm -f "${policy}"
    fi
    [[ "${rc}" -eq 0 ]] || die "apt-get install failed (exit ${rc}) for: $*"
}

_missing_pkgs() {
    local pkg
    for pkg in "$@"; do
        pkg_installed "${pkg}" || printf '%s\n' "${pkg}"
    done
}

# need_apt PKG...: installs the packages that are not installed yet (one apt-get update per run).
need_apt() {
    local missing=()
    mapfile -t missing < <(_missing_pkgs "$@")
    if [[ "${#missing[@]}" -gt 0 ]]; then
        _apt_install 0 "${missing[@]}"
    fi
}

# need_apt_no_start PKG...: like need_apt, but the packages' services are not started.
need_apt_no_start() {
    local missing=()
    mapfile -t missing < <(_missing_pkgs "$@")
    if [[ "${#missing[@]}" -gt 0 ]]; then
        _apt_install 1 "${missing[@]}"
    fi
}

# ---------------------------------------------------------------------------------------------
# What building and testing need

# The C toolchain and libraries the Rust build needs: paho-mqtt's bundled C library (cmake,
# OpenSSL), prost-build (protoc), and curl/python3 for the scripts themselves.
ensure_build_deps() {
    need_apt build-essential cmake pkg-config libssl-dev protobuf-compiler libprotobuf-dev curl ca-certificates
    have python3 || need_apt python3
    have cargo || die "cargo not found: install the Rust toolchain (rustup) first"
}

# The newest PostgreSQL version with a Debian cluster directory (e.g. 15), or nothing.
pg_version() {
    if [[ -d /etc/postgresql ]]; then
        find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null \
            | sort -V | tail -n 1
    fi
}

# psql as the superuser over TCP on 127.0.0.1, never prompting for a password.
pg_psql() {
    PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}" psql -w -X -q -v ON_ERROR_STOP=1 \
        -h "${AURUMAI_PG_HOST}" -p "${AURUMAI_PG_PORT}" -U "${AURUMAI_PG_SUPERUSER}" "$@"
}

pg_ready() {
    pg_isready -q -h "${AURUMAI_PG_HOST}" -p "${AURUMAI_PG_PORT}" >/dev/null 2>&1
}

_pg_wait_ready() {
    local timeout="${1:-60}"
    local deadline=$((SECONDS + timeout))
    until pg_ready; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

_pg_cluster_running() {
    local version="$1"
    pg_ctlcluster --skip-systemctl-redirect "${version}" main status >/dev/null 2>&1
}

_pg_cluster_start() {
    local version="$1"
    log "starting PostgreSQL ${version} (cluster main)"
    as_root pg_ctlcluster --skip-systemctl-redirect "${version}" main start
}

# Lets local TCP connections in without a password (local dev/test machine only).
_pg_trust_local_tcp() {
    local version="$1"
    local hba="/etc/postgresql/${version}/main/pg_hba.conf"
    [[ -f "${hba}" ]] || die "cannot connect to PostgreSQL as ${AURUMAI_PG_SUPERUSER} and ${hba} does not exist"
    warn "PostgreSQL refuses password-less local TCP connections: adding trust for 127.0.0.1 and ::1 to ${hba} (dev/test machine)"
    local tmp
    tmp="$(mktemp)"
    {
        printf '# Added by AurumAI deploy/scripts/lib.sh: local dev/test machine, trust loopback TCP.\n'
        printf 'host    all    all    127.0.0.1/32    trust\n'
        printf 'host    all    all    ::1/128         trust\n'
        cat "${hba}"
    } >"${tmp}"
    as_root cp "${tmp}" "${hba}"
    rm -f "${tmp}"
    as_root pg_ctlcluster --skip-systemctl-redirect "${version}" main reload
    sleep 1
}

# Turns TLS on with Debian's snakeoil certificate (a test checks TLS to PostgreSQL).
_pg_enable_ssl() {
    local version="$1"
    local cert=/etc/ssl/certs/ssl-cert-snakeoil.pem
    local key=/etc/ssl/private/ssl-cert-snakeoil.key
    warn "PostgreSQL runs without TLS: turning ssl on with the snakeoil certificate and restarting it"
    need_apt ssl-cert
    if [[ ! -f "${cert}" ]] || ! as_root test -f "${key}"; then
        as_root make-ssl-cert generate-default-snakeoil --force-overwrite
    fi
    if id postgres >/dev/null 2>&1 && getent group ssl-cert >/dev/null 2>&1; then
        as_root usermod -a -G ssl-cert postgres
    fi
    local conf="/etc/postgresql/${version}/main/postgresql.conf"
    [[ -f "${conf}" ]] || die "PostgreSQL has ssl off and ${conf} does not exist: turn ssl on by hand"
    {
        printf '\n# Added by AurumAI deploy/scripts/lib.sh: TLS for local connections (tests check it).\n'
        printf "ssl = on\n"
        printf "ssl_cert_file = '%s'\n" "${cert}"
        printf "ssl_key_file = '%s'\n" "${key}"
    } | as_root tee -a "${conf}" >/dev/null
    as_root pg_ctlcluster --skip-systemctl-redirect "${version}" main restart
    _pg_wait_ready 60 || die "PostgreSQL did not come back after enabling ssl (see /var/log/postgresql/)"
}

# ensure_postgres: PostgreSQL reachable on 127.0.0.1:5432 as the superuser, without password,
# with TLS on. Installs it when missing and starts it when stopped; a running server is only
# touched when the trust rule or TLS is missing.
ensure_postgres() {
    local version
    if ! have psql || ! have pg_isready; then
        need_apt postgresql-client
    fi
    if ! pg_ready; then
        if ! pg_installed_server; then
            need_apt postgresql ssl-cert
        fi
        version="$(pg_version)"
        [[ -n "${version}" ]] || die "PostgreSQL is installed but no cluster exists under /etc/postgresql"
        if [[ ! -d "/etc/postgresql/${version}/main" ]]; then
            log "creating PostgreSQL ${version} cluster main"
            as_root pg_createcluster "${version}" main
        fi
        if ! _pg_cluster_running "${version}"; then
            _pg_cluster_start "${version}"
        fi
        log "waiting for PostgreSQL on ${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT}"
        _pg_wait_ready 60 || die "PostgreSQL did not become ready on ${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT} (see /var/log/postgresql/)"
    fi
    version="$(pg_version)"

    if ! pg_psql -d postgres -c 'select 1' >/dev/null 2>&1; then
        [[ -n "${version}" ]] || die "cannot connect to PostgreSQL as ${AURUMAI_PG_SUPERUSER} on ${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT}, and it is not a Debian cluster this script can configure"
        _pg_trust_local_tcp "${version}"
        pg_psql -d postgres -c 'select 1' >/dev/null \
            || die "still cannot connect to PostgreSQL as ${AURUMAI_PG_SUPERUSER} on ${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT}"
    fi

    local ssl
    ssl="$(pg_psql -d postgres -Atc 'show ssl')"
    if [[ "${ssl}" != "on" ]]; then
        [[ -n "${version}" ]] || die "PostgreSQL has ssl off and is not a Debian cluster this script can configure"
        _pg_enable_ssl "${version}"
        ssl="$(pg_psql -d postgres -Atc 'show ssl')"
        [[ "${ssl}" == "on" ]] || die "PostgreSQL still reports ssl=${ssl} (see /var/log/postgresql/)"
    fi
    log "PostgreSQL ready on ${AURUMAI_PG_HOST}:${AURUMAI_PG_PORT} (ssl on)"
}

# Whether a PostgreSQL server (not only the client) is installed.
pg_installed_server() {
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# dynsec_plugin: the path of Mosquitto's dynamic-security plugin (per-account topic ACLs).
dynsec_plugin() {
    local path
    for path in /usr/lib/*/mosquitto_dynamic_security.so /usr/lib/mosquitto_dynamic_security.so; do
        [[ -f "${path}" ]] && {
            printf '%s\n' "${path}"
            return 0
        }
    done
    return 1
}

# ensure_mosquitto_binary: the mosquitto broker binary (tests and the demo start their own
# brokers) and the command-line clients. Never starts the system broker.
ensure_mosquitto_binary() {
    if have mosquitto && have mosquitto_pub && have mosquitto_sub && have mosquitto_ctrl; then
        return 0
    fi
    need_apt_no_start mosquitto mosquitto-clients
    have mosquitto || die "mosquitto is still not on PATH after installing it"
}

# ---------------------------------------------------------------------------------------------
# Ports and readiness

# Prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# port_is_free PORT: true when nothing listens on 127.0.0.1:PORT (nor on the wildcard address).
port_is_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# preferred_port PORT: PORT when it is free, else a free port.
preferred_port() {
    if port_is_free "$1"; then
        printf '%s\n' "$1"
    else
        free_port
    fi
}

# wait_tcp HOST PORT TIMEOUT_SECONDS: waits until a TCP connection succeeds.
wait_tcp() {
    local host="$1" port="$2" timeout="${3:-30}"
    local deadline=$((SECONDS + timeout))
    until python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' \
        "${host}" "${port}" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# wait_http URL TIMEOUT_SECONDS: waits until URL answers 2xx.
wait_http() {
    local url="$1" timeout="${2:-60}"
    local deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null --max-time 2 "${url}" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

# replace_section FILE HEADING SECTION_FILE: puts SECTION_FILE in place of FILE's section whose
# heading line starts with HEADING (up to the next "## " heading or the end), or appends it;
# the rest of FILE stays as it is. FILE starts as "# Benchmarks" when missing.
replace_section() {
    local file="$1" heading="$2" section="$3"
    [[ -f "${file}" ]] || printf '# Benchmarks\n\n' >"${file}"
    if grep -q "^${heading}" "${file}"; then
        awk -v file="${section}" -v heading="${heading}" '
            index($0, heading) == 1 { while ((getline line < file) > 0) print line; print ""; skip = 1; next }
            skip && /^## / { skip = 0 }
            !skip { print }
        ' "${file}" >"${file}.tmp"
    else
        { cat "${file}"; echo; cat "${section}"; } >"${file}.tmp"
    fi
    mv "${file}.tmp" "${file}"
}

