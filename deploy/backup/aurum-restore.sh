#!/usr/bin/env bash
# aurum-restore: restores an aurum-backup file into a new, empty database.
#
#   aurum-restore --identity KEY.txt --dbname aurumai_restored --create-db BACKUP.dump.age
#
# 1. Checks the sha256 sidecar (BACKUP.sha256) and that the file is an age file.
# 2. Decrypts with the age identity (private key) of AURUM_RESTORE_IDENTITY_FILE or --identity,
#    streaming: the decrypted dump is never written to disk.
# 3. Reads the dump's table of contents (a first, short decryption pass) for the roles it
#    names (owners, grantees) and checks that they exist in the target cluster. Roles are
#    cluster-wide objects that a database dump does not carry; the migrations create them.
#    --create-roles creates the missing service roles with the attributes the migrations give
#    them (without passwords: run each service's `migrate` afterwards to set them).
# 4. Restores with pg_restore in ONE transaction, keeping owners and grants (no --no-owner,
#    no --no-privileges): the services' least-privilege model depends on which role owns what.
#    A failure rolls everything back, leaving the target database empty.
# 5. Applies the dump's database-level grants and settings (GRANT CONNECT ON DATABASE ...) to
#    the target database, whose name may differ from the original, and runs ANALYZE.
#
# The target must be a new, empty database, never the live one: see docs/backup.md for why, and
# for switching the services over afterwards.
#
# Connection: libpq variables (PGHOST, PGPORT, PGUSER, PGSSLMODE, PGSSLROOTCERT, ...); the
# password from PGPASSWORD_FILE (turned into a private password file) or PGPASSFILE. Restore as
# the migration administrator (a role that may create roles, own the services' objects and
# create the btree_gist extension).
set -Eeuo pipefail
umask 077

PROG=aurum-restore

# shellcheck source-path=SCRIPTDIR source=aurum-backup-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/aurum-backup-lib.sh"

usage() {
    cat <<'EOF'
Usage: aurum-restore [options] BACKUP.dump.age

Restores an encrypted aurum-backup file into a new, empty database, keeping owners and grants.

Options:
  -i, --identity FILE     age identity (private key) file; default AURUM_RESTORE_IDENTITY_FILE
  -d, --dbname NAME       the target database; default PGDATABASE. Must be empty, or must not
                          exist with --create-db. Never the database the services are using.
  --create-db             create the target database (fails if it exists)
  --maintenance-db NAME   database to connect to for --create-db and the role checks
                          (default postgres)
  --create-roles          create missing service roles (aurumai_ingestion, aurumai_prediction,
                          aurumai_auth, aurumai_gateway: LOGIN; aurumai_readonly: NOLOGIN),
                          without passwords; other missing roles are an error
  --no-checksum           restore even without a .sha256 sidecar (age still authenticates
                          every chunk it decrypts)
  --no-analyze            skip ANALYZE after the restore
  -h, --help              this text

Environment:
  AURUM_RESTORE_IDENTITY_FILE   the identity file, when --identity is not given
  PGHOST PGPORT PGUSER PGSSLMODE PGSSLROOTCERT PGDATABASE   libpq connection
  PGPASSWORD_FILE or PGPASSFILE the password (never on a command line)
EOF
}

identity="${AURUM_RESTORE_IDENTITY_FILE:-}"
target_db="${PGDATABASE:-}"
create_db=0
create_roles=0
verify_checksum=1
analyze=1
maintenance_db=postgres
backup=""

while [[ "$#" -gt 0 ]]; do
    case "$1" in
        -i | --identity)
            [[ "$#" -ge 2 ]] || die "$1 needs a value"
            identity="$2"
            shift 2
            ;;
        --identity=*)
            identity="${1#*=}"
            shift
            ;;
        -d | --dbname)
            [[ "$#" -ge 2 ]] || die "$1 needs a value"
            target_db="$2"
            shift 2
            ;;
        --dbname=*)
            target_db="${1#*=}"
            shift
            ;;
        --maintenance-db)
            [[ "$#" -ge 2 ]] || die "$1 needs a value"
            maintenance_db="$2"
            shift 2
            ;;
        --maintenance-db=*)
            maintenance_db="${1#*=}"
            shift
            ;;
        --create-db)
            create_db=1
            shift
            ;;
        --create-roles)
            create_roles=1
            shift
            ;;
        --no-checksum)
            verify_checksum=0
            shift
            ;;
        --no-analyze)
            analyze=0
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            usage >&2
            die "unknown option: $1"
            ;;
        *)
            [[ -z "${backup}" ]] || die "only one backup file, please"
            backup="$1"
            shift
            ;;
    esac
done

for tool in age pg_restore psql sha256sum; do
    command -v "${tool}" >/dev/null 2>&1 || die "${tool} is not installed"
done

[[ -n "${backup}" ]] || {
    usage >&2
    die "which backup? name the .dump.age file"
}
[[ -f "${backup}" && -r "${backup}" ]] || die "cannot read ${backup}"
[[ -n "${identity}" ]] || die "no identity: set AURUM_RESTORE_IDENTITY_FILE or pass --identity FILE (the age private key)"
[[ -f "${identity}" && -r "${identity}" ]] || die "cannot read the identity file ${identity}"
if [[ -n "$(find "${identity}" -maxdepth 0 -perm /077 2>/dev/null)" ]]; then
    log "warning: the identity file ${identity} is readable by others than its owner (chmod 600 it)"
fi
[[ -n "${target_db}" ]] || die "no target database: pass --dbname NAME (or set PGDATABASE)"
[[ "${target_db}" != "${maintenance_db}" ]] || die "the target database must not be the maintenance database ${maintenance_db}"

work="$(mktemp -d "${TMPDIR:-/tmp}/aurum-restore.XXXXXX")"
created_db=0
restored=0

cleanup() {
    local rc=$?
    trap - EXIT
    if [[ "${rc}" -ne 0 && "${created_db}" -eq 1 && "${restored}" -eq 0 ]]; then
        # The restore ran in one transaction, so the database this run created is empty.
        log "dropping the database ${target_db} this run created"
        sql_admin -c "DROP DATABASE IF EXISTS $(quote_ident "${target_db}")" >/dev/null 2>&1 \
            || log "warning: could not drop ${target_db}; drop it by hand"
    fi
    rm -rf -- "${work}"
    exit "${rc}"
}
trap cleanup EXIT
trap 'log "error: interrupted"; exit 130' INT
trap 'log "error: terminated"; exit 143' TERM

# --- The password: a private libpq password file, never an argument or a variable. ---
private_password_file "${work}"
# The target is named by --dbname only, never by an inherited PGDATABASE.
unset PGDATABASE

# sql DB ARGS...: psql on DB, stopping at the first error, never prompting.
sql() {
    local db="$1"
    shift
    psql -X -w -q -v ON_ERROR_STOP=1 --dbname="${db}" "$@"
}
sql_admin() {
    sql "${maintenance_db}" "$@"
}

# quote_ident NAME: NAME as an SQL identifier (computed locally: double quotes, doubled inside).
# Plain names are quoted too, so that a name that is also a keyword stays a name.
quote_ident() {
    local s="$1"
    printf '"%s"' "${s//\"/\"\"}"
}

# --- 1. Integrity. ---
if [[ "${verify_checksum}" -eq 1 ]]; then
    sidecar="${backup}.sha256"
    [[ -r "${sidecar}" ]] || die "no checksum file ${sidecar} (pass --no-checksum to restore without it)"
    read -r want _ <"${sidecar}" || true
    [[ "${want:-}" =~ ^[0-9a-f]{64}$ ]] || die "${sidecar} does not hold a sha256 checksum"
    have_sum="$(sha256sum -- "${backup}")"
    have_sum="${have_sum%% *}"
    [[ "${have_sum}" == "${want}" ]] \
        || die "checksum mismatch: ${backup} is not the file the backup wrote (sha256 ${have_sum}, expected ${want})"
    log "checksum verified: sha256 ${have_sum}"
fi
IFS= read -r header <"${backup}" || true
[[ "${header:-}" == "age-encryption.org/v1" ]] || die "${backup} is not an age-encrypted file"

# decrypt: the backup, decrypted, on stdout; age's messages in work/age.err.
decrypt() {
    age --decrypt --identity "${identity}" -- "${backup}" 2>"${work}/age.err"
}

show_age_errors() {
    if [[ -s "${work}/age.err" ]]; then
        sed "s/^/${PROG}: age: /" "${work}/age.err" >&2
    fi
}

# --- 2. The table of contents and the schema (no data): a short first pass. ---
log "decrypting ${backup} (first pass: table of contents)"
set +e
decrypt | pg_restore --create --schema-only --file="${work}/schema.sql" 2>"${work}/toc.err"
status=("${PIPESTATUS[@]}")
set -e
# pg_restore may stop reading once it has the schema; age then ends on a closed pipe (141).
if [[ "${status[0]}" -ne 0 && "${status[0]}" -ne 141 ]] || [[ "${status[1]}" -ne 0 ]]; then
    show_age_errors
    if grep -q 'no identity matched' "${work}/age.err" 2>/dev/null; then
        die "the identity ${identity} cannot decrypt ${backup}: it was encrypted to other keys"
    fi
    if [[ "${status[0]}" -ne 0 && "${status[0]}" -ne 141 ]]; then
        die "age could not decrypt ${backup} (exit ${status[0]})"
    fi
    sed "s/^/${PROG}: pg_restore: /" "${work}/toc.err" >&2
    die "the decrypted file is not a readable pg_dump archive"
fi

schema="${work}/schema.sql"
orig_db="$(sed -n 's/^CREATE DATABASE \(.*\) WITH .*;$/\1/p' "${schema}" | head -n 1)"
[[ -n "${orig_db}" ]] || die "the archive names no database (was it made by aurum-backup, with --create?)"
encoding="$(sed -n "s/^CREATE DATABASE .* ENCODING = '\([A-Za-z0-9_]*\)'.*;$/\1/p" "${schema}" | head -n 1)"
encoding="${encoding:-UTF8}"

# The roles the dump names: owners, grantees, default-privilege owners. One per line.
ident_re='("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
mapfile -t roles < <(
    {
        grep -E '^ALTER .* OWNER TO ' "${schema}" | grep -Ev '^ALTER DATABASE ' \
            | sed -E "s/.* OWNER TO ${ident_re};\$/\\1/"
        grep -E '^GRANT .* TO .*;$' "${schema}" \
            | sed -E "s/.* TO ${ident_re}( WITH GRANT OPTION)?;\$/\\1/"
        grep -E '^REVOKE .* FROM .*;$' "${schema}" \
            | sed -E "s/.* FROM ${ident_re};\$/\\1/"
        grep -E '^ALTER DEFAULT PRIVILEGES FOR ROLE ' "${schema}" \
            | sed -E "s/^ALTER DEFAULT PRIVILEGES FOR ROLE ${ident_re} .*/\\1/"
    } | sed -E 's/^"(.*)"$/\1/; s/""/"/g' | grep -vx 'PUBLIC' | LC_ALL=C sort -u
)

# The database-level statements (grants on the database, its settings, its comment), renamed
# to the target database. Not restored by pg_restore without --create.
target_ident="$(quote_ident "${target_db}")"
: >"${work}/database.sql"
while IFS= read -r line; do
    case "${line}" in
        "GRANT "*" ON DATABASE ${orig_db} "* | "REVOKE "*" ON DATABASE ${orig_db} "* | \
            "ALTER DATABASE ${orig_db} SET "* | "ALTER ROLE "*" IN DATABASE ${orig_db} SET "* | \
            "COMMENT ON DATABASE ${orig_db} IS "*)
            printf '%s\n' "${line/" DATABASE ${orig_db} "/" DATABASE ${target_ident} "}" >>"${work}/database.sql"
            ;;
    esac
done <"${schema}"

log "the archive holds database ${orig_db} ($(grep -c '^CREATE TABLE ' "${schema}" || true) tables, encoding ${encoding}); it names ${#roles[@]} roles: ${roles[*]}"

# --- 3. Roles. ---
service_login_roles=(aurumai_ingestion aurumai_prediction aurumai_auth aurumai_gateway)
service_nologin_roles=(aurumai_readonly)
missing=()
for role in "${roles[@]}"; do
    exists="$(sql_admin -At -v role="${role}" <<'SQL'
SELECT count(*) FROM pg_roles WHERE rolname = :'role';
SQL
)" || die "cannot connect to ${maintenance_db} on ${PGHOST:-local socket}:${PGPORT:-5432} as ${PGUSER:-the current user}"
    [[ "${exists}" == "1" ]] || missing+=("${role}")
done
if [[ "${#missing[@]}" -gt 0 ]]; then
    if [[ "${create_roles}" -ne 1 ]]; then
        die "roles missing in the target cluster: ${missing[*]}. Create them first (--create-roles creates the service roles as the migrations do; other roles, such as the migration administrator that owns the audit tables, must be created by hand)"
    fi
    unknown=()
    for role in "${missing[@]}"; do
        attrs=""
        for r in "${service_login_roles[@]}"; do
            [[ "${role}" == "${r}" ]] && attrs="LOGIN"
        done
        for r in "${service_nologin_roles[@]}"; do
            [[ "${role}" == "${r}" ]] && attrs="NOLOGIN"
        done
        if [[ -z "${attrs}" ]]; then
            unknown+=("${role}")
        fi
    done
    [[ "${#unknown[@]}" -eq 0 ]] \
        || die "roles missing in the target cluster that are not service roles: ${unknown[*]}. Create them by hand (e.g. the migration administrator) and run again"
    for role in "${missing[@]}"; do
        attrs=LOGIN
        [[ " ${service_nologin_roles[*]} " == *" ${role} "* ]] && attrs=NOLOGIN
        if [[ "${attrs}" == LOGIN ]]; then
            log "creating role ${role} (LOGIN, no password yet: the migrations set it)"
        else
            log "creating role ${role} (NOLOGIN)"
        fi
        sql_admin -c "CREATE ROLE $(quote_ident "${role}") ${attrs} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION" \
            || die "cannot create role ${role}"
    done
fi

# --- 4. The target database: new, or existing and empty. ---
db_exists="$(sql_admin -At -v db="${target_db}" <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'db';
SQL
)"
if [[ "${create_db}" -eq 1 ]]; then
    [[ "${db_exists}" == "0" ]] || die "database ${target_db} exists; --create-db restores into a new database only"
    log "creating database ${target_db} (template0, encoding ${encoding})"
    sql_admin -c "CREATE DATABASE ${target_ident} TEMPLATE template0 ENCODING '${encoding}'"
    created_db=1
else
    [[ "${db_exists}" == "1" ]] || die "database ${target_db} does not exist (pass --create-db to create it)"
    objects="$(sql "${target_db}" -At <<'SQL'
SELECT (SELECT count(*) FROM pg_namespace
         WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\_%')
     + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql');
SQL
)"
    [[ "${objects}" == "0" ]] \
        || die "database ${target_db} is not empty (${objects} schemas, relations or extensions): restore into a new database (--create-db), then switch (docs/backup.md)"
fi

# --- 5. The restore, in one transaction. ---
log "restoring into ${target_db} (one transaction; owners and grants kept)"
started=${SECONDS}
set +e
decrypt | pg_restore --dbname="${target_db}" --single-transaction --exit-on-error --no-password 2>"${work}/restore.err"
status=("${PIPESTATUS[@]}")
set -e
if [[ "${status[0]}" -ne 0 || "${status[1]}" -ne 0 ]]; then
    show_age_errors
    sed "s/^/${PROG}: pg_restore: /" "${work}/restore.err" >&2
    if [[ "${status[1]}" -eq 0 ]]; then
        die "age reported an error (exit ${status[0]}) after pg_restore had finished: the file is damaged or was tampered with, and ${target_db} cannot be trusted"
    fi
    [[ "${status[0]}" -eq 0 ]] || die "decryption failed mid-stream (exit ${status[0]}): the file is damaged or was tampered with; nothing was restored (the transaction was rolled back)"
    die "pg_restore failed (exit ${status[1]}); nothing was restored (the transaction was rolled back)"
fi
restored=1
if [[ -s "${work}/restore.err" ]]; then
    sed "s/^/${PROG}: pg_restore: /" "${work}/restore.err" >&2
fi

if [[ -s "${work}/database.sql" ]]; then
    log "applying the database's own grants and settings ($(wc -l <"${work}/database.sql") statements) to ${target_db}"
    sql "${target_db}" --single-transaction -f "${work}/database.sql" \
        || die "the data is restored, but the database-level grants could not be applied: see above"
fi

if [[ "${analyze}" -eq 1 ]]; then
    log "ANALYZE ${target_db}"
    sql "${target_db}" -c 'ANALYZE' || die "ANALYZE failed"
fi

tables="$(sql "${target_db}" -At <<'SQL'
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%';
SQL
)"
log "restored ${backup} into ${target_db}: ${tables} tables in $((SECONDS - started))s"
log "next: run the migrations against ${target_db} (they set the service roles' passwords), then switch the services over (docs/backup.md)"
