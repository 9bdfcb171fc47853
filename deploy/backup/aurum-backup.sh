#!/usr/bin/env bash
# aurum-backup: one encrypted logical backup of the AurumAI database.
#
# pg_dump (custom format) streams through a pipe into age, which encrypts to the public keys
# (recipients) of AURUM_BACKUP_RECIPIENTS_FILE; the unencrypted dump never touches a disk. The
# result is written under a hidden temporary name in AURUM_BACKUP_DIR and renamed to
# aurumai-<UTC timestamp>.dump.age once complete, with a sha256sum-style sidecar
# (<name>.sha256). Then only the newest AURUM_BACKUP_KEEP backups are kept.
#
# Connection: the libpq variables PGHOST, PGPORT, PGDATABASE (default aurumai), PGUSER,
# PGSSLMODE, PGSSLROOTCERT (and the other PG* ones). The password comes from PGPASSWORD_FILE
# (a file holding only the password, e.g. a mounted Kubernetes Secret), which is turned into a
# private libpq password file (mode 600) in a temporary directory, or from PGPASSFILE. It never
# appears in a command line, the environment of pg_dump, or the log.
#
# Exit status: 0 when the backup is complete and renamed into place; non-zero, with a message,
# on any error (pg_dump, age, disk, checksum, retention). The new backup's path is the only
# thing printed on stdout; the log goes to stderr and never contains a secret.
#
# See docs/backup.md.
set -Eeuo pipefail
umask 077

PROG=aurum-backup

# shellcheck source-path=SCRIPTDIR source=aurum-backup-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/aurum-backup-lib.sh"

usage() {
    cat <<'EOF'
Usage: aurum-backup [--dir DIR] [--keep N] [--recipients-file FILE]

Dumps the database (pg_dump --format=custom), encrypts the stream with age to the recipients'
public keys, and writes DIR/aurumai-<UTC timestamp>.dump.age plus a .sha256 sidecar; keeps the
newest N backups.

Options (each overrides its environment variable):
  --dir DIR               AURUM_BACKUP_DIR: where backups are written (must exist)
  --keep N                AURUM_BACKUP_KEEP: how many backups to keep (default 7)
  --recipients-file FILE  AURUM_BACKUP_RECIPIENTS_FILE: age public keys (age1...), one per
                          line; empty lines and lines starting with # are ignored
  -h, --help              this text

Environment:
  PGHOST PGPORT PGDATABASE PGUSER PGSSLMODE PGSSLROOTCERT   libpq connection (PGDATABASE
                          defaults to aurumai)
  PGPASSWORD_FILE         file holding the password (preferred; converted to a private
                          password file), or PGPASSFILE: a libpq password file
  AURUM_BACKUP_LOCK_WAIT_TIMEOUT  how long pg_dump waits for a table lock (default 5min)
  TMPDIR                  private temporary files (the password file, a pipe): use a
                          memory-backed volume
EOF
}

backup_dir="${AURUM_BACKUP_DIR:-}"
keep="${AURUM_BACKUP_KEEP:-7}"
recipients_file="${AURUM_BACKUP_RECIPIENTS_FILE:-}"
lock_wait="${AURUM_BACKUP_LOCK_WAIT_TIMEOUT:-5min}"

while [[ "$#" -gt 0 ]]; do
    case "$1" in
        --dir)
            [[ "$#" -ge 2 ]] || die "--dir needs a value"
            backup_dir="$2"
            shift 2
            ;;
        --dir=*)
            backup_dir="${1#*=}"
            shift
            ;;
        --keep)
            [[ "$#" -ge 2 ]] || die "--keep needs a value"
            keep="$2"
            shift 2
            ;;
        --keep=*)
            keep="${1#*=}"
            shift
            ;;
        --recipients-file)
            [[ "$#" -ge 2 ]] || die "--recipients-file needs a value"
            recipients_file="$2"
            shift 2
            ;;
        --recipients-file=*)
            recipients_file="${1#*=}"
            shift
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
done

for tool in pg_dump age sha256sum flock mkfifo; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is not installed"
done

# --- Settings. ---
[[ -n "${backup_dir}" ]] || die "no backup directory: set AURUM_BACKUP_DIR (or --dir)"
[[ -d "${backup_dir}" ]] || die "backup directory ${backup_dir} does not exist (is the volume mounted?)"
[[ -w "${backup_dir}" ]] || die "backup directory ${backup_dir} is not writable by uid $(id -u)"
[[ "${keep}" =~ ^[1-9][0-9]*$ ]] || die "AURUM_BACKUP_KEEP must be a whole number of at least 1, not '${keep}'"
[[ "${lock_wait}" =~ ^[0-9]+(ms|s|min|h)?$ ]] || die "AURUM_BACKUP_LOCK_WAIT_TIMEOUT must be like 300s or 5min, not '${lock_wait}'"

export PGDATABASE="${PGDATABASE:-aurumai}"

work="$(mktemp -d "${TMPDIR:-/tmp}/aurum-backup.XXXXXX")"
partial=""
sidecar_partial=""
dump_pid=""
age_pid=""

cleanup() {
    local rc=$?
    trap - EXIT
    [[ -z "${partial}" ]] || rm -f -- "${partial}"
    [[ -z "${sidecar_partial}" ]] || rm -f -- "${sidecar_partial}"
    rm -rf -- "${work}"
    exit "${rc}"
}
on_signal() {
    log "error: interrupted by $1: stopping, no backup written"
    [[ -z "${dump_pid}" ]] || kill -TERM "${dump_pid}" 2>/dev/null || true
    [[ -z "${age_pid}" ]] || kill -TERM "${age_pid}" 2>/dev/null || true
    wait 2>/dev/null || true
    exit "$2"
}
trap cleanup EXIT
trap 'on_signal SIGTERM 143' TERM
trap 'on_signal SIGINT 130' INT

# --- Recipients: at least one age X25519 public key, nothing else. ---
[[ -n "${recipients_file}" ]] \
    || die "no recipients: set AURUM_BACKUP_RECIPIENTS_FILE (age public keys, age1...); refusing to write an unencrypted backup"
[[ -r "${recipients_file}" ]] || die "cannot read the recipients file ${recipients_file}"
recipients="${work}/recipients"
: >"${recipients}"
n_recipients=0
line_no=0
while IFS= read -r line || [[ -n "${line}" ]]; do
    line_no=$((line_no + 1))
    line="${line%$'\r'}"
    # Trim surrounding blanks.
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    [[ -z "${line}" || "${line}" == \#* ]] && continue
    if [[ "${line}" == AGE-SECRET-KEY-* ]]; then
        # Never echo it: it is a private key that has just leaked into the backup's config.
        die "line ${line_no} of ${recipients_file} is a PRIVATE key (AGE-SECRET-KEY-...): only public keys (age1...) belong there; treat that key as compromised and replace it"
    fi
    [[ "${line}" =~ ^age1[02-9ac-hj-np-z]{58}$ ]] \
        || die "line ${line_no} of ${recipients_file} is not an age public key (age1 followed by 58 bech32 characters)"
    printf '%s\n' "${line}" >>"${recipients}"
    n_recipients=$((n_recipients + 1))
done <"${recipients_file}"
[[ "${n_recipients}" -gt 0 ]] \
    || die "${recipients_file} holds no age public key; refusing to write an unencrypted backup"

# --- The password: a private libpq password file, never an argument or a variable of pg_dump. ---
private_password_file "${work}"

target_host="${PGHOST:-local socket}"
case "${PGSSLMODE:-}" in
    require | verify-ca | verify-full) ;;
    *)
        case "${PGHOST:-}" in
            "" | /* | localhost | 127.0.0.1 | ::1) ;;
            *) log "warning: PGSSLMODE is '${PGSSLMODE:-unset}': the dump may travel unencrypted or to an unverified server (use verify-full)" ;;
        esac
        ;;
esac

# --- One backup at a time per directory. ---
exec 9>>"${backup_dir}/.aurum-backup.lock"
flock -n 9 || die "another aurum-backup is writing to ${backup_dir}"
# Holding the lock, every leftover temporary file is from a run that died: remove them.
find "${backup_dir}" -maxdepth 1 -type f -name '.aurumai-*.partial' -delete

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
name="aurumai-${stamp}.dump.age"
final="${backup_dir}/${name}"
[[ ! -e "${final}" ]] || die "${final} already exists (two backups within one second?)"
partial="${backup_dir}/.${name}.partial"
sidecar_partial="${backup_dir}/.${name}.sha256.partial"

log "backing up database ${PGDATABASE} on ${target_host}:${PGPORT:-5432} as ${PGUSER:-$(id -un 2>/dev/null || echo "uid $(id -u)")} (sslmode ${PGSSLMODE:-libpq default}, password from ${password_source})"
log "encrypting to ${n_recipients} recipient(s): $(paste -sd ' ' "${recipients}")"

# pg_dump writes into a pipe that age reads: both run in the background so a SIGTERM reaches
# this script (and is passed on to them) at once, and each one's exit status is checked.
fifo="${work}/dump.pipe"
mkfifo -m 600 "${fifo}"
started=${SECONDS}
age --encrypt --recipients-file "${recipients}" --output "${partial}" <"${fifo}" 2>"${work}/age.err" &
age_pid=$!
# --create: the archive also carries the database's own grants and settings, which
# aurum-restore applies to the database it restores into.
pg_dump --format=custom --create --no-password --lock-wait-timeout="${lock_wait}" >"${fifo}" 2>"${work}/pg_dump.err" &
dump_pid=$!

dump_rc=0
wait "${dump_pid}" || dump_rc=$?
dump_pid=""
age_rc=0
wait "${age_pid}" || age_rc=$?
age_pid=""
if [[ -s "${work}/pg_dump.err" ]]; then
    sed "s/^/${PROG}: pg_dump: /" "${work}/pg_dump.err" >&2
fi
if [[ -s "${work}/age.err" ]]; then
    sed "s/^/${PROG}: age: /" "${work}/age.err" >&2
fi
[[ "${dump_rc}" -eq 0 ]] || die "pg_dump failed (exit ${dump_rc}); no backup written"
[[ "${age_rc}" -eq 0 ]] || die "age failed (exit ${age_rc}); no backup written"

[[ -s "${partial}" ]] || die "the encrypted dump is empty; no backup written"
IFS= read -r header <"${partial}" || true
[[ "${header}" == "age-encryption.org/v1" ]] || die "the output is not an age file; no backup written"

sum="$(sha256sum -- "${partial}")" || die "cannot checksum the encrypted dump"
sum="${sum%% *}"
printf '%s  %s\n' "${sum}" "${name}" >"${sidecar_partial}"
chmod 600 "${partial}" "${sidecar_partial}"
sync -- "${partial}" "${sidecar_partial}" || die "cannot flush the backup to disk"
mv -- "${partial}" "${final}"
partial=""
mv -- "${sidecar_partial}" "${final}.sha256"
sidecar_partial=""
sync -- "${backup_dir}" || die "cannot flush ${backup_dir}"

size="$(stat -c %s -- "${final}")"
log "wrote ${final} (${size} bytes, sha256 ${sum}) in $((SECONDS - started))s"

# --- Retention: the newest KEEP backups stay. Names sort by time. ---
mapfile -t backups < <(find "${backup_dir}" -maxdepth 1 -type f -name 'aurumai-*.dump.age' -printf '%f\n' \
    | grep -E '^aurumai-[0-9]{8}T[0-9]{6}Z\.dump\.age$' | LC_ALL=C sort)
excess=$((${#backups[@]} - keep))
for ((i = 0; i < excess; i++)); do
    old="${backups[i]}"
    rm -f -- "${backup_dir:?}/${old}" "${backup_dir:?}/${old}.sha256" || die "cannot remove the old backup ${old}"
    log "removed ${old} (keeping the newest ${keep})"
done
log "done: ${#backups[@]} backup(s) before retention, $((excess > 0 ? keep : ${#backups[@]})) kept"

printf '%s\n' "${final}"
