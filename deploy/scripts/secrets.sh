#!/usr/bin/env bash
# `make secrets`: generates the secrets of a new AurumAI deployment into one file, never on the
# terminal.
#
#   deploy/scripts/secrets.sh --out FILE [--format k8s|env] [--name NAME] [--namespace NS] [--force]
#   make secrets ARGS="--format k8s --out aurumai-secrets.yaml --namespace aurumai"
#
# Every value is 32 bytes (256 bits) from /dev/urandom, written as unpadded base64url: 43
# characters of [A-Za-z0-9_-], safe in YAML, in env files, in URLs and in libpq password files.
# The file is created with mode 600 (umask 077) next to its final name and then moved into
# place; an existing file is never replaced without --force. Only the file's path and the key
# names are printed: the values exist in this process's memory and in the file, nowhere else
# (they are written by the shell's printf builtin, so they never appear in a command line).
set -euo pipefail
umask 077

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The keys the Helm chart reads from the Secret, in this order.
SECRET_KEYS=(
    database-admin-password
    database-ingestion-password
    database-prediction-password
    database-auth-password
    database-gateway-password
    mqtt-admin-password
    mqtt-ingestion-password
    auth-key-encryption-key
    auth-bootstrap-admin-password
    ingestion-client-secret
)
# Random bytes per value: 256 bits of entropy (the auth service needs at least 32 bytes of
# key-encryption key; 43 base64url characters are that and more).
SECRET_BYTES=32

usage() {
    cat <<'EOF'
Usage: deploy/scripts/secrets.sh --out FILE [options]
       make secrets ARGS="--out FILE [options]"

Generates a new deployment's secrets (256 random bits each, base64url) into FILE (mode 600).
Nothing secret is printed: only FILE and the key names.

  --out FILE         where to write (required); its directory must exist
  --format FORMAT    k8s (default): a Kubernetes Secret manifest (type Opaque, stringData),
                     apply it with `kubectl apply -f FILE`;
                     env: KEY=value lines, key names upper-cased with '-' as '_'
                     (e.g. DATABASE_ADMIN_PASSWORD=...), for docker --env-file or `set -a; . FILE`
  --name NAME        the Secret's name (k8s; default aurumai-secrets)
  --namespace NS     the Secret's namespace (k8s; default: none, kubectl's current one)
  --force            replace FILE when it exists (default: refuse)
  -h, --help         this text

Keys: database-admin-password database-ingestion-password database-prediction-password
      database-auth-password database-gateway-password mqtt-admin-password
      mqtt-ingestion-password auth-key-encryption-key auth-bootstrap-admin-password
      ingestion-client-secret
EOF
}

format=k8s
out=""
name=aurumai-secrets
namespace=""
force=0

# Option values are taken from the next argument or after '='.
while [[ "$#" -gt 0 ]]; do
    case "$1" in
        --out | --format | --name | --namespace)
            [[ "$#" -ge 2 ]] || die "$1 needs a value (see --help)"
            opt="$1"
            val="$2"
            shift 2
            ;;
        --out=* | --format=* | --name=* | --namespace=*)
            opt="${1%%=*}"
            val="${1#*=}"
            shift
            ;;
        --force)
            force=1
            shift
            continue
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
    esac
    case "${opt}" in
        --out) out="${val}" ;;
        --format) format="${val}" ;;
        --name) name="${val}" ;;
        --namespace) namespace="${val}" ;;
    esac
done

[[ -n "${out}" ]] || {
    usage >&2
    die "--out FILE is required (secrets are never printed)"
}
case "${format}" in
    k8s | env) ;;
    *) die "--format must be k8s or env, not '${format}'" ;;
esac
if [[ "${format}" == k8s ]]; then
    # Kubernetes object names: a DNS subdomain (name) and a DNS label (namespace).
    [[ "${#name}" -le 253 && "${name}" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ ]] \
        || die "--name '${name}' is not a valid Kubernetes object name (lower-case letters, digits, '-' and '.')"
    if [[ -n "${namespace}" ]]; then
        [[ "${#namespace}" -le 63 && "${namespace}" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] \
            || die "--namespace '${namespace}' is not a valid namespace (lower-case letters, digits and '-', at most 63)"
    fi
fi

out_dir="$(dirname -- "${out}")"
[[ -d "${out_dir}" ]] || die "the directory of ${out} does not exist"
[[ ! -d "${out}" ]] || die "${out} is a directory"
if [[ -e "${out}" || -L "${out}" ]] && [[ "${force}" -ne 1 ]]; then
    die "${out} exists: refusing to overwrite it (pass --force to replace it with new secrets)"
fi
[[ -r /dev/urandom ]] || die "/dev/urandom is not readable"

# random_value: 32 bytes from /dev/urandom as unpadded base64url (43 characters).
random_value() {
    local v
    v="$(head -c "${SECRET_BYTES}" /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '=')"
    [[ "${#v}" -eq 43 ]] || die "could not read ${SECRET_BYTES} random bytes from /dev/urandom"
    printf '%s' "${v}"
}

declare -A values=()
declare -A seen=()
for key in "${SECRET_KEYS[@]}"; do
    value="$(random_value)"
    # Two equal values out of 2^256 mean a broken random source, not bad luck.
    [[ -z "${seen[${value}]:-}" ]] || die "the random source repeated itself: refusing to write secrets"
    seen["${value}"]=1
    values["${key}"]="${value}"
done
unset seen value

tmp="$(mktemp "${out_dir}/.aurumai-secrets.XXXXXX")"
trap 'rm -f -- "${tmp}"' EXIT
chmod 600 "${tmp}"

stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [[ "${format}" == k8s ]]; then
    {
        printf '# AurumAI deployment secrets, generated by "make secrets" at %s.\n' "${stamp}"
        printf '# Apply with "kubectl apply -f" and then delete or vault this file; never commit it.\n'
        printf 'apiVersion: v1\n'
        printf 'kind: Secret\n'
        printf 'metadata:\n'
        printf '  name: %s\n' "${name}"
        if [[ -n "${namespace}" ]]; then
            printf '  namespace: %s\n' "${namespace}"
        fi
        printf '  labels:\n'
        printf '    app.kubernetes.io/part-of: aurumai\n'
        printf 'type: Opaque\n'
        printf 'stringData:\n'
        for key in "${SECRET_KEYS[@]}"; do
            printf '  %s: "%s"\n' "${key}" "${values[${key}]}"
        done
    } >"${tmp}"
else
    {
        printf '# AurumAI deployment secrets, generated by "make secrets" at %s. Never commit this file.\n' "${stamp}"
        for key in "${SECRET_KEYS[@]}"; do
            env_key="${key//-/_}"
            printf '%s=%s\n' "${env_key^^}" "${values[${key}]}"
        done
    } >"${tmp}"
fi
unset values

if [[ "${force}" -eq 1 ]]; then
    mv -f -- "${tmp}" "${out}"
else
    # A hard link never replaces an existing name: a file created meanwhile is not clobbered.
    ln -- "${tmp}" "${out}" 2>/dev/null \
        || die "${out} exists: refusing to overwrite it (pass --force to replace it with new secrets)"
    rm -f -- "${tmp}"
fi
trap - EXIT

if [[ "${format}" == k8s ]]; then
    log "wrote Secret ${namespace:+${namespace}/}${name} (${#SECRET_KEYS[@]} keys, mode 600) to ${out}"
else
    log "wrote ${#SECRET_KEYS[@]} variables (mode 600) to ${out}"
fi
log "keys: ${SECRET_KEYS[*]}"
