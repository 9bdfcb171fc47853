# shellcheck shell=bash
# Shared by aurum-backup and aurum-restore (sourced, not run): the log format, and how the
# database password reaches libpq. Both scripts set PROG first; the image installs this file
# next to them.

log() {
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${PROG}" "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# private_password_file DIR: makes the password a private libpq password file DIR/pgpass
# (mode 600) and points PGPASSFILE at it, so it is never an argument or a variable of the
# PostgreSQL tools. From PGPASSWORD_FILE (a file holding only the password, e.g. a mounted
# Kubernetes Secret), or a private copy of PGPASSFILE (libpq ignores a password file that group
# or others may read, which is how Kubernetes mounts secrets by default). Sets
# password_source to where the password came from (aurum-backup logs it).
private_password_file() {
    local dir="$1" pw
    # shellcheck disable=SC2034 # read by the sourcing script
    if [[ -n "${PGPASSWORD_FILE:-}" ]]; then
        [[ -r "${PGPASSWORD_FILE}" ]] || die "cannot read PGPASSWORD_FILE (${PGPASSWORD_FILE})"
        pw="$(<"${PGPASSWORD_FILE}")"
        [[ -n "${pw}" ]] || die "PGPASSWORD_FILE (${PGPASSWORD_FILE}) is empty"
        [[ "${pw}" != *$'\n'* ]] || die "PGPASSWORD_FILE (${PGPASSWORD_FILE}) holds more than one line"
        # In a password file, '\' and ':' inside a field are escaped with '\'.
        pw="${pw//\\/\\\\}"
        pw="${pw//:/\\:}"
        (umask 077 && printf '*:*:*:*:%s\n' "${pw}" >"${dir}/pgpass")
        unset pw
        export PGPASSFILE="${dir}/pgpass"
        unset PGPASSWORD
        password_source="PGPASSWORD_FILE"
    elif [[ -n "${PGPASSFILE:-}" ]]; then
        [[ -r "${PGPASSFILE}" ]] || die "cannot read PGPASSFILE (${PGPASSFILE})"
        cp -- "${PGPASSFILE}" "${dir}/pgpass"
        chmod 600 "${dir}/pgpass"
        export PGPASSFILE="${dir}/pgpass"
        password_source="PGPASSFILE"
    elif [[ -n "${PGPASSWORD:-}" ]]; then
        password_source="PGPASSWORD (prefer PGPASSWORD_FILE)"
    else
        password_source="none"
    fi
}
