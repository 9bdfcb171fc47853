#!/usr/bin/env bash
# Test of `make secrets` (deploy/scripts/secrets.sh), run by `make test` through
# backup-restore-check.sh. For both formats, into a temporary directory:
#
#   - the file has mode 600 and holds every key the Helm chart reads, each exactly once;
#   - the values are 43 base64url characters (256 bits), all distinct, and differ between runs;
#   - the k8s manifest parses as YAML (PyYAML, in a virtual environment under target/) into
#     a v1 Secret of type Opaque with the requested name and namespace;
#   - the env file is KEY=value lines with the upper-cased names;
#   - nothing the command printed contains a value;
#   - an existing file is not overwritten without --force (and is with it); bad arguments fail.
#
# The values are compared inside Python, which reads the files itself: no value is ever
# printed, even when a check fails.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"
secrets_sh="${AURUMAI_ROOT}/deploy/scripts/secrets.sh"
[[ -f "${secrets_sh}" ]] || die "${secrets_sh} not found"

# PyYAML in its own virtual environment: Debian's python3-yaml belongs to /usr/bin/python3,
# which need not be the python3 on PATH.
pyyaml_version="6.0.3"
venv="${AURUMAI_ROOT}/target/check-tools"
py="${venv}/bin/python"
if [[ ! -x "${py}" ]] || ! "${py}" -c 'import yaml' 2>/dev/null; then
    have python3 || need_apt python3
    python3 -m venv "${venv}" 2>/dev/null || {
        need_apt python3-venv
        python3 -m venv "${venv}"
    }
    log "installing PyYAML ${pyyaml_version} into target/check-tools"
    "${venv}/bin/pip" install --quiet --disable-pip-version-check "PyYAML==${pyyaml_version}"
fi
"${py}" -c 'import yaml' || die "PyYAML is not importable from ${py}"

work="$(mktemp -d)"
trap 'rm -rf -- "${work}"' EXIT

fail() {
    die "secrets check: $*"
}

# run_secrets LOG ARGS...: runs secrets.sh with ARGS, its stdout and stderr in LOG; returns
# its exit code.
run_secrets() {
    local logfile="$1"
    shift
    local rc=0
    bash "${secrets_sh}" "$@" >"${logfile}" 2>&1 </dev/null || rc=$?
    return "${rc}"
}

# verify FORMAT FILE LOG [NAME NAMESPACE]: the content checks, in Python. Exits non-zero with a
# message naming the problem (never a value).
verify() {
    "${py}" - "$@" <<'PY'
import os, re, stat, sys

import yaml

fmt, path, log = sys.argv[1], sys.argv[2], sys.argv[3]
want_name = sys.argv[4] if len(sys.argv) > 4 else "aurumai-secrets"
want_ns = sys.argv[5] if len(sys.argv) > 5 else ""
KEYS = [
    "database-admin-password", "database-ingestion-password", "database-prediction-password",
    "database-auth-password", "database-gateway-password", "mqtt-admin-password",
    "mqtt-ingestion-password", "auth-key-encryption-key", "auth-bootstrap-admin-password",
    "ingestion-client-secret",
]
VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def bad(msg):
    print(f"{path}: {msg}", file=sys.stderr)
    sys.exit(1)


mode = stat.S_IMODE(os.stat(path).st_mode)
if mode != 0o600:
    bad(f"mode is {mode:o}, not 600")

with open(path, encoding="utf-8") as f:
    text = f.read()

if fmt == "k8s":
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(docs) != 1:
        bad(f"{len(docs)} YAML documents, expected one")
    doc = docs[0]
    if not isinstance(doc, dict):
        bad("the manifest is not a mapping")
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Secret":
        bad("not an apiVersion v1, kind Secret manifest")
    if doc.get("type") != "Opaque":
        bad("type is not Opaque")
    meta = doc.get("metadata") or {}
    if meta.get("name") != want_name:
        bad(f"metadata.name is {meta.get('name')!r}, expected {want_name!r}")
    if (meta.get("namespace") or "") != want_ns:
        bad(f"metadata.namespace is {meta.get('namespace')!r}, expected {want_ns!r}")
    if "data" in doc:
        bad("unexpected data section next to stringData")
    data = doc.get("stringData")
    if not isinstance(data, dict):
        bad("no stringData mapping")
    # A duplicated key would be silently merged by the YAML loader: count the lines too.
    for k in KEYS:
        n = len(re.findall(rf"^  {re.escape(k)}:", text, flags=re.M))
        if n != 1:
            bad(f"key {k} appears {n} times")
    values = {k: data.get(k) for k in KEYS}
    extra = sorted(set(data) - set(KEYS))
else:
    values, extra = {}, []
    names = {k.replace("-", "_").upper(): k for k in KEYS}
    for i, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            bad(f"line {i} is not KEY=value")
        env_key, value = m.groups()
        if env_key not in names:
            extra.append(env_key)
            continue
        if names[env_key] in values:
            bad(f"{env_key} appears twice")
        values[names[env_key]] = value

if extra:
    bad(f"unexpected keys: {', '.join(extra)}")
for k in KEYS:
    v = values.get(k)
    if not isinstance(v, str):
        bad(f"key {k} is missing or not a string")
    if not VALUE.match(v):
        bad(f"the value of {k} is not 43 base64url characters (256 bits)")
if len(set(values.values())) != len(KEYS):
    bad("two keys have the same value")

with open(log, encoding="utf-8", errors="replace") as f:
    printed = f.read()
for k, v in values.items():
    if v in printed:
        bad(f"the command printed the value of {k}")
    if v[:12] in printed:
        bad(f"the command printed part of the value of {k}")
for k in KEYS:
    if k not in printed:
        bad(f"the command did not name the key {k}")

# Hand the values to the caller's cross-run comparison as digests only.
import hashlib
digests = sorted(hashlib.sha256(v.encode()).hexdigest() for v in values.values())
with open(path + ".digests", "w", encoding="ascii") as f:
    f.write("\n".join(digests) + "\n")
PY
}

# --- k8s, default name, no namespace. ---
k8s="${work}/secrets.yaml"
run_secrets "${work}/k8s.log" --format k8s --out "${k8s}" || {
    cat "${work}/k8s.log" >&2
    fail "secrets.sh --format k8s failed"
}
grep -qF -- "${k8s}" "${work}/k8s.log" || fail "the k8s run did not name the file it wrote"
verify k8s "${k8s}" "${work}/k8s.log" || fail "the k8s manifest is wrong (see above)"

# --- k8s with a name and a namespace (make's ARGS form). ---
k8s_ns="${work}/named.yaml"
run_secrets "${work}/k8s-ns.log" --format=k8s --name aurumai-prod --namespace aurumai --out="${k8s_ns}" || {
    cat "${work}/k8s-ns.log" >&2
    fail "secrets.sh --name --namespace failed"
}
verify k8s "${k8s_ns}" "${work}/k8s-ns.log" aurumai-prod aurumai || fail "the named k8s manifest is wrong (see above)"

# --- env. ---
envf="${work}/secrets.env"
run_secrets "${work}/env.log" --format env --out "${envf}" || {
    cat "${work}/env.log" >&2
    fail "secrets.sh --format env failed"
}
verify env "${envf}" "${work}/env.log" || fail "the env file is wrong (see above)"
# The env file is valid shell: sourcing it in a subshell defines every variable.
(
    set -a
    # shellcheck disable=SC1090
    . "${envf}"
    set +a
    for v in DATABASE_ADMIN_PASSWORD DATABASE_INGESTION_PASSWORD DATABASE_PREDICTION_PASSWORD \
        DATABASE_AUTH_PASSWORD DATABASE_GATEWAY_PASSWORD MQTT_ADMIN_PASSWORD MQTT_INGESTION_PASSWORD \
        AUTH_KEY_ENCRYPTION_KEY AUTH_BOOTSTRAP_ADMIN_PASSWORD INGESTION_CLIENT_SECRET; do
        [[ -n "${!v:-}" ]] || exit 1
    done
) || fail "sourcing the env file does not define every variable"

# --- Every run draws new values: no digest is shared between the three files. ---
dups="$(sort "${k8s}.digests" "${k8s_ns}.digests" "${envf}.digests" | uniq -d | wc -l)"
[[ "${dups}" -eq 0 ]] || fail "two runs produced the same value"

# --- Refusing to overwrite, and --force. ---
before="$(sha256sum "${k8s}" | awk '{ print $1 }')"
if run_secrets "${work}/again.log" --format k8s --out "${k8s}"; then
    fail "secrets.sh overwrote an existing file without --force"
fi
grep -q 'refusing to overwrite' "${work}/again.log" || fail "the refusal does not say why"
[[ "$(sha256sum "${k8s}" | awk '{ print $1 }')" == "${before}" ]] || fail "the refused run changed the file"
run_secrets "${work}/force.log" --format k8s --out "${k8s}" --force || {
    cat "${work}/force.log" >&2
    fail "secrets.sh --force failed"
}
[[ "$(sha256sum "${k8s}" | awk '{ print $1 }')" != "${before}" ]] || fail "--force did not write new secrets"
verify k8s "${k8s}" "${work}/force.log" || fail "the manifest written with --force is wrong (see above)"
# No temporary file is left next to the output.
if compgen -G "${work}/.aurumai-secrets.*" >/dev/null; then
    fail "a temporary file was left in the output directory"
fi

# --- Bad arguments fail and write nothing. ---
for args in "--format yaml --out ${work}/x1" "--format k8s" "--out ${work}/no-such-dir/x2" \
    "--format k8s --name Bad_Name --out ${work}/x3" "--bogus --out ${work}/x4"; do
    # shellcheck disable=SC2086 # the arguments are split on purpose
    if run_secrets "${work}/bad.log" ${args}; then
        fail "secrets.sh accepted bad arguments: ${args}"
    fi
done
for f in x1 x3 x4; do
    [[ ! -e "${work}/${f}" ]] || fail "a refused run wrote ${f}"
done

log "secrets check passed: k8s (default and named) and env files, mode 600, 10 distinct 256-bit values each, nothing printed, no overwrite without --force"
