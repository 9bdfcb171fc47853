#!/usr/bin/env bash
# Installs (and starts) what building and testing AurumAI need, skipping what is already there:
#   - build dependencies: build-essential cmake pkg-config libssl-dev protobuf-compiler libprotobuf-dev (+ curl)
#   - PostgreSQL on 127.0.0.1:5432, superuser postgres without password, TLS on
#   - the mosquitto broker binary and clients (tests start their own brokers; the system broker
#     is not started)
#   - a Python venv at .aurumai/venv with the OIDC client library the auth tests drive (authlib)
#   - Node.js and the upstream OIDC provider the auth federation tests run (oidc-provider, npm ci)
#   - the diesel CLI (print-schema), which checks the postgres adapter's schemas against the
#     migrations (crates/adapters/postgres/tests/schema.rs)
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
            sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: ${arg}" ;;
    esac
done

ensure_build_deps
if [[ "${build_only}" -eq 1 ]]; then
    exit 0
fi
# The auth service's tests run a standard OIDC client (authlib) against it from this venv
# (services/auth/tests/oidc_client); AURUM_TEST_PYTHON overrides the interpreter they use.
AURUMAI_TEST_VENV="${AURUMAI_ROOT}/.aurumai/venv"
AURUMAI_TEST_PY_PKGS=(authlib==1.9.10 requests==2.34.2 cryptography)
ensure_test_venv() {
    local py="${AURUMAI_TEST_VENV}/bin/python"
    if [[ -x "${py}" ]] && "${py}" -c 'import authlib, requests, joserfc, cryptography' 2>/dev/null \
        && [[ "$("${py}" -c 'import authlib; print(authlib.__version__)')" == "1.9.10" ]]; then
        return 0
    fi
    log "python venv for the OIDC client tests: ${AURUMAI_TEST_VENV}"
    mkdir -p "$(dirname "${AURUMAI_TEST_VENV}")"
    python3 -m venv "${AURUMAI_TEST_VENV}" 2>/dev/null \
        || { need_apt python3-venv; python3 -m venv "${AURUMAI_TEST_VENV}"; }
    "${py}" -m pip install --quiet --disable-pip-version-check "${AURUMAI_TEST_PY_PKGS[@]}"
}

# The auth federation tests run a real upstream OIDC provider (npm oidc-provider, pinned by
# services/auth/tests/oidc_provider/package-lock.json) with node; node_modules stays untracked.
AURUMAI_OIDC_PROVIDER_DIR="${AURUMAI_ROOT}/services/auth/tests/oidc_provider"
ensure_oidc_provider() {
    if ! have node || ! have npm; then
        need_apt nodejs npm
    fi
    local dir="${AURUMAI_OIDC_PROVIDER_DIR}"
    # Up to date when every package the lock pins is installed at its pinned version.
    if (cd "${dir}" && node -e '
        const fs = require("fs");
        const want = JSON.parse(fs.readFileSync("package-lock.json")).packages;
        for (const [p, m] of Object.entries(want)) {
            if (!p || m.optional || m.dev || m.peer) continue;
            const got = JSON.parse(fs.readFileSync(p + "/package.json")).version;
            if (got !== m.version) process.exit(1);
        }' 2>/dev/null); then
        return 0
    fi
    log "npm ci for the upstream OIDC provider of the federation tests: ${dir}"
    (cd "${dir}" && npm ci --no-audit --no-fund --loglevel=error)
}

# The diesel CLI of diesel's own major version, with PostgreSQL support only (libpq).
AURUMAI_DIESEL_CLI_VERSION="2.3.14"
ensure_diesel_cli() {
    if have diesel && [[ "$(diesel --version 2>/dev/null)" == *"${AURUMAI_DIESEL_CLI_VERSION}"* ]]; then
        return 0
    fi
    need_apt libpq-dev
    log "cargo install diesel_cli ${AURUMAI_DIESEL_CLI_VERSION} (PostgreSQL only)"
    cargo install diesel_cli --version "=${AURUMAI_DIESEL_CLI_VERSION}" --no-default-features \
        --features postgres --locked --quiet
}

ensure_postgres
ensure_mosquitto_binary
ensure_test_venv
ensure_oidc_provider
ensure_diesel_cli
log "dependencies ready: $(command -v mosquitto), $(psql --version), $("${AURUMAI_TEST_VENV}/bin/python" --version), node $(node --version), diesel $(diesel --version | sed -n 's/.*Version: //p')"
