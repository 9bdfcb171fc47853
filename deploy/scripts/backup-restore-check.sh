#!/usr/bin/env bash
# The backup and restore drill (`make backup-check`; `make test` runs it after the workspace
# tests), against the local PostgreSQL. It first runs the two static checks that belong to the
# same deployment story: secrets-check.sh (`make secrets`) and session-state-check.sh
# (PgBouncer in transaction mode).
#
#   1. A uniquely named database gets the real schema (each service's `migrate`) and
#      representative rows in every service's schema: telemetry in three daily partitions,
#      quarantine payloads, models, predictions, alerts, emission factors, users, clients,
#      keys, devices, audit entries.
#   2. A snapshot of it: per table the row count and a checksum of all its rows; owners,
#      grants and default privileges; columns (with their compression), indexes, constraints,
#      triggers, partition bounds, functions, sequences, extensions, the database's own grants.
#   3. deploy/backup/aurum-backup.sh with a throw-away age key pair (two recipients). The file
#      must be age-encrypted (no pg_dump "PGDMP" magic, pg_restore cannot read it), decrypt
#      to a pg_dump archive with either key, and match its sha256 sidecar; retention keeps the
#      newest AURUM_BACKUP_KEEP. The backup must refuse to run without recipients, with a
#      private key among them, and fail (leaving no file) when pg_dump fails.
#   4. deploy/backup/aurum-restore.sh must refuse a wrong identity and a corrupted file
#      (checksum), and roll back a tampered one whose checksum was forged (age's
#      authentication), creating nothing.
#   5. The database is dropped and restored into the same cluster (roles exist): the snapshot
#      must be identical, and the service roles must still have exactly their privileges.
#   6. A throw-away cluster (initdb on a free port, password authentication over TCP) stands
#      for a new server after a disaster: the restore must refuse while the service roles are
#      missing, then succeed with --create-roles, with the PGPASSWORD_FILE path of both scripts
#      exercised; the snapshot must again be identical.
#
# Everything it creates (databases, the cluster, keys, files) is removed on exit. Passwords and
# private keys are never printed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"
backup_sh="${AURUMAI_ROOT}/deploy/backup/aurum-backup.sh"
restore_sh="${AURUMAI_ROOT}/deploy/backup/aurum-restore.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "${TARGET_DIR}" == /* ]] || TARGET_DIR="${AURUMAI_ROOT}/${TARGET_DIR}"
# Each service's `migrate` creates its own schema; the drill needs all four.
SCHEMA_SERVICES=(ingestion prediction auth gateway)
t_start=${SECONDS}

fail() {
    die "backup check: $*"
}

# step NAME: logs the start of a step and the time since the check began.
step() {
    log "[$((SECONDS - t_start))s] $*"
}

# --- 0. The static checks. ---
step "secrets check (make secrets)"
bash "${AURUMAI_ROOT}/deploy/scripts/secrets-check.sh"
step "session-state check (PgBouncer transaction mode)"
bash "${AURUMAI_ROOT}/deploy/scripts/session-state-check.sh"

# --- What the drill needs. ---
step "checking PostgreSQL, age and the PostgreSQL client"
ensure_postgres
if ! have age || ! have age-keygen; then
    need_apt age
fi
if ! have pg_dump || ! have pg_restore; then
    need_apt postgresql-client
fi
have sha256sum || die "sha256sum (coreutils) is missing"
for service in "${SCHEMA_SERVICES[@]}"; do
    if [[ ! -x "${TARGET_DIR}/debug/aurum-${service}" ]]; then
        step "building aurum-${service} (for its migrate command)"
        cargo build -p "aurum-${service}"
    fi
    [[ -x "${TARGET_DIR}/debug/aurum-${service}" ]] || fail "aurum-${service} is missing"
done

# --- Scratch space and cleanup. ---
work="$(mktemp -d "${TMPDIR:-/tmp}/aurum-backup-check.XXXXXX")"
chmod 700 "${work}"
suffix="$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
db="aurum_backup_check_${suffix}"
dbs_to_drop=("${db}" "${db}_wrongkey" "${db}_tampered" "${db}_forged")
cluster_dir=""
cluster_port=""
as_pg_owner=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local d
    for d in "${dbs_to_drop[@]}"; do
        pg_psql -d postgres -c "DROP DATABASE IF EXISTS \"${d}\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [[ -n "${cluster_dir}" && -f "${cluster_dir}/data/postmaster.pid" ]]; then
        "${as_pg_owner[@]}" "${pg_bin}/pg_ctl" -D "${cluster_dir}/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -z "${cluster_dir}" ]] || rm -rf -- "${cluster_dir}"
    rm -rf -- "${work}"
    if [[ "${rc}" -ne 0 ]]; then
        warn "backup check failed (exit ${rc}) after $((SECONDS - t_start))s"
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# psql_on HOST PORT DB ARGS...: psql as the superuser; the password (if any) from PGPASSFILE.
psql_on() {
    local host="$1" port="$2" dbname="$3"
    shift 3
    PGCONNECT_TIMEOUT=5 psql -X -w -q -v ON_ERROR_STOP=1 -h "${host}" -p "${port}" -U "${AURUMAI_PG_SUPERUSER}" -d "${dbname}" "$@"
}

# snapshot HOST PORT DB OUT: everything the restore must bring back, one fact per line, sorted.
snapshot() {
    local host="$1" port="$2" dbname="$3" out="$4"
    psql_on "${host}" "${port}" "${dbname}" -At -F ' ' >"${out}.raw" <<'SQL'
\set ON_ERROR_STOP 1
-- Per table: the row count and a checksum of every row, in a stable order.
SELECT format($f$SELECT 'rows %s.%s ' || count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM %I.%I t$f$,
              n.nspname, c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1
\gexec
-- Sequences (identity columns): where they continue.
SELECT format($f$SELECT 'sequence %s.%s ' || last_value || ' ' || is_called FROM %I.%I$f$,
              n.nspname, c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1
\gexec
-- Grants (aclitem arrays) are compared as sorted sets: their order carries no meaning.
-- Schemas: owner and grants.
SELECT 'schema', nspname, pg_get_userbyid(nspowner), coalesce((SELECT string_agg(g::text, ',' ORDER BY g::text) FROM unnest(nspacl) g), '-')
  FROM pg_namespace WHERE nspname NOT IN ('information_schema') AND nspname NOT LIKE 'pg\_%';
-- Relations: kind, owner, grants, storage options, partition bounds.
SELECT 'relation', n.nspname || '.' || c.relname, c.relkind, pg_get_userbyid(c.relowner),
       coalesce((SELECT string_agg(g::text, ',' ORDER BY g::text) FROM unnest(c.relacl) g), '-'), coalesce(c.reloptions::text, '-'),
       coalesce(pg_get_expr(c.relpartbound, c.oid), '-')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%';
-- Columns: type, nullability, default, compression, column grants.
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), coalesce(nullif(a.attcompression, ''), '-'),
       coalesce((SELECT string_agg(g::text, ',' ORDER BY g::text) FROM unnest(a.attacl) g), '-'), a.attidentity
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%';
-- Indexes and constraints.
SELECT 'index', n.nspname, pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%';
SELECT 'constraint', n.nspname || '.' || cl.relname, co.conname, pg_get_constraintdef(co.oid)
  FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%';
-- Triggers, functions (owner, grants, SECURITY DEFINER, body), default privileges.
SELECT 'trigger', tgrelid::regclass::text, tgname, tgenabled, pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal;
SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), coalesce((SELECT string_agg(g::text, ',' ORDER BY g::text) FROM unnest(p.proacl) g), '-'),
       p.prosecdef, md5(p.prosrc), coalesce(p.proconfig::text, '-')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = p.oid AND dep.deptype = 'e');
SELECT 'default-acl', pg_get_userbyid(d.defaclrole), coalesce(n.nspname, '-'), d.defaclobjtype, coalesce((SELECT string_agg(g::text, ',' ORDER BY g::text) FROM unnest(d.defaclacl) g), '-')
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace;
SELECT 'extension', extname, extversion, pg_get_userbyid(extowner) FROM pg_extension;
-- The database's own grants (not part of a plain pg_restore; aurum-restore applies them).
SELECT 'database-acl', coalesce((SELECT string_agg(g::text, ',' ORDER BY g::text) FROM unnest(datacl) g), '-') FROM pg_database WHERE datname = current_database();
SQL
    LC_ALL=C sort "${out}.raw" >"${out}"
    rm -f "${out}.raw"
}

# compare_snapshots A B WHAT: fails with the differences when A and B differ.
compare_snapshots() {
    if ! diff -u "$1" "$2" >"${work}/snapshot.diff"; then
        head -n 60 "${work}/snapshot.diff" >&2
        fail "$3: the restored database differs from the original (see the diff above)"
    fi
}

# --- 1. The database, its schema and its rows. ---
step "creating database ${db} and running the migrations (each service's migrate)"
pg_psql -d postgres -c "CREATE DATABASE \"${db}\""
for service in "${SCHEMA_SERVICES[@]}"; do
    role="aurumai_${service}"
    env -i PATH="${PATH}" HOME="${HOME:-/root}" \
        AURUM_PROFILE=dev \
        AURUM_DATABASE__HOST="${AURUMAI_PG_HOST}" \
        AURUM_DATABASE__PORT="${AURUMAI_PG_PORT}" \
        AURUM_DATABASE__NAME="${db}" \
        AURUM_DATABASE__USER="${role}" \
        AURUM_DATABASE__ADMIN_USER="${AURUMAI_PG_SUPERUSER}" \
        AURUM_DATABASE__SSLMODE=disable \
        AURUM_TELEMETRY__LOG_FORMAT=pretty \
        AURUM_TELEMETRY__LOG_LEVEL=warn \
        "${TARGET_DIR}/debug/aurum-${service}" migrate >>"${work}/migrate.log" 2>&1 || {
        cat "${work}/migrate.log" >&2
        fail "aurum-${service} migrate failed"
    }
done

step "inserting representative rows as the service roles"
pg_psql -d "${db}" <<'SQL'
BEGIN;
SET LOCAL ROLE aurumai_ingestion;
INSERT INTO ingestion.profiles (tenant_id, profile_id, version, name, metrics, feature_window_s, created_by)
VALUES ('demo', 'centrifugal_pump', 1, 'Centrifugal pump',
        '[{"name": "discharge_pressure", "unit": "bar", "min": 0, "max": 40, "kind": "gauge", "description": ""}]',
        21600, 'backup-check');
INSERT INTO ingestion.machines (tenant_id, machine_id, machine_type, profile_id, site_id, name) VALUES
    ('demo', 'TRUCK-21', 'haul_truck', 'haul_truck', 'pit-north', 'Haul truck 21'),
    ('demo', 'MILL-3', 'grinding_mill', 'grinding_mill', 'plant', 'SAG mill 3'),
    ('demo', 'BOILER-7', 'industrial_boiler', 'industrial_boiler', 'plant', NULL),
    ('demo', 'PUMP-1', NULL, 'centrifugal_pump', 'plant', 'Feed pump 1');
-- Three daily partitions, created the way the service's maintenance creates them.
CREATE TABLE ingestion.telemetry_p20260301 PARTITION OF ingestion.telemetry
    FOR VALUES FROM ('2026-03-01 00:00:00+00') TO ('2026-03-02 00:00:00+00');
CREATE TABLE ingestion.telemetry_p20260302 PARTITION OF ingestion.telemetry
    FOR VALUES FROM ('2026-03-02 00:00:00+00') TO ('2026-03-03 00:00:00+00');
CREATE TABLE ingestion.telemetry_p20260303 PARTITION OF ingestion.telemetry
    FOR VALUES FROM ('2026-03-03 00:00:00+00') TO ('2026-03-04 00:00:00+00');
INSERT INTO ingestion.telemetry (machine_key, seq, ts, received_at, metrics)
SELECT m.machine_key, s, ts, ts + interval '150 ms',
       jsonb_build_object('rpm', 1500 + (s % 200), 'vibration', round((2.5 + (s % 17) / 10.0)::numeric, 2),
                          'temperature', 70 + (s % 30), 'note', 'reading ' || s)
  FROM ingestion.machines m,
       generate_series(1, 2000) AS s,
       LATERAL (SELECT timestamptz '2026-03-01 00:00:00+00' + (s * interval '129 s') AS ts) t;
INSERT INTO ingestion.quarantine (dedup_key, received_at, source, tenant_id, machine_id, seq, topic,
                                  metric, value, reason, detail, payload)
SELECT 'dedup-' || s, timestamptz '2026-03-02 12:00:00+00' + s * interval '1 min',
       CASE WHEN s % 2 = 0 THEN 'mqtt' ELSE 'http' END, 'demo', 'TRUCK-21', s,
       'aurum/v1/demo/TRUCK-21/telemetry', 'vibration', (s * 1000)::text,
       'out_of_range', 'value outside the plausible range',
       -- 64 bytes that do not compress: the dump is large enough that the restore's first pass
       -- (the table of contents) ends before the part the tampering check changes.
       decode(md5(s::text) || md5((s * 7)::text) || md5((s * 13)::text) || md5((s * 17)::text), 'hex')
  FROM generate_series(1, 4000) AS s;
INSERT INTO ingestion.profile_changes (tenant_id, profile_id, changed_at)
VALUES ('demo', 'centrifugal_pump', '2026-03-01 08:00:00+00');
INSERT INTO ingestion.maintenance_events (tenant_id, machine_id, kind, failure_mode, occurred_at, recorded_by, note)
VALUES ('demo', 'MILL-3', 'failure', 'liner_wear', '2026-03-02 06:00:00+00', 'operator@demo', 'liner cracked'),
       ('demo', 'MILL-3', 'part_replaced', 'liner_wear', '2026-03-02 18:00:00+00', 'operator@demo', ''),
       ('demo', 'PUMP-1', 'inspection', NULL, '2026-03-03 09:30:00+00', 'planner@demo', 'nothing found');
COMMIT;

BEGIN;
SET LOCAL ROLE aurumai_prediction;
INSERT INTO prediction.models (version, trained_at, sha256, artifact, evaluation, active, activated_at, activated_by)
VALUES ('check-1', '2026-02-01', repeat('a', 64), convert_to(repeat('{"trees":[1,2,3]}', 50), 'UTF8'),
        '{"auc": 0.91}', false, NULL, NULL),
       ('check-2', '2026-02-15', repeat('b', 64), '\x00010203fffe'::bytea, '{"auc": 0.93}', true, '2026-02-16', 'admin@demo');
INSERT INTO prediction.machines (tenant_id, machine_id, machine_type, site_id) VALUES
    ('demo', 'TRUCK-21', 'haul_truck', 'pit-north'),
    ('demo', 'MILL-3', 'grinding_mill', 'plant'),
    ('demo', 'BOILER-7', 'industrial_boiler', 'plant');
INSERT INTO prediction.machine_status (machine_key, window_end, features, predicted_at, model_version, risk_score,
                                       failure_probability, horizon_h, rul_hours, anomaly_score, confidence,
                                       top_features, recent_risk, recent_anomaly)
SELECT machine_key, '2026-03-03 23:00:00+00', '{"vibration": {"mean": 3.1, "std": 0.4}}', '2026-03-03 23:00:05+00',
       'check-2', 0.1 * machine_key, 0.05 * machine_key, 72, 400 - machine_key, 0.2, 0.8,
       '[{"feature": "vibration.mean", "weight": 0.4}]', ARRAY[0.1, 0.2, 0.1 * machine_key], ARRAY[0.3]
  FROM prediction.machines;
INSERT INTO prediction.predictions (machine_key, ts, model_version, risk_score, failure_probability, horizon_h,
                                    rul_hours, anomaly_score, confidence, top_features)
SELECT m.machine_key, timestamptz '2026-03-01 00:00:00+00' + s * interval '10 min', 'check-2',
       (s % 100) / 100.0, (s % 50) / 100.0, 72, 500 - s / 10.0, (s % 7) / 7.0, 0.75, '[]'
  FROM prediction.machines m, generate_series(1, 300) AS s;
INSERT INTO prediction.alerts (machine_key, category, severity, state, score, peak_score, message, model_version,
                               opened_at, updated_at, resolved_at, resolved_by, resolution_note)
SELECT machine_key, 'predictive', 'warning', CASE WHEN machine_key = 1 THEN 'resolved' ELSE 'open' END,
       0.7, 0.8, 'failure risk above 0.7', 'check-2', '2026-03-02', '2026-03-03',
       CASE WHEN machine_key = 1 THEN timestamptz '2026-03-03' END,
       CASE WHEN machine_key = 1 THEN 'operator@demo' END,
       CASE WHEN machine_key = 1 THEN 'bearing replaced' END
  FROM prediction.machines;
INSERT INTO prediction.alert_feedback (alert_id, verdict, event_id, given_by, given_at, note)
SELECT id, 'confirmed', 1, 'planner@demo', '2026-03-03 10:00:00+00', 'liner cracked'
  FROM prediction.alerts ORDER BY id LIMIT 1;
INSERT INTO prediction.activity (machine_key, metric, period_from, period_to, amount)
SELECT m.machine_key, 'fuel_rate', timestamptz '2026-03-01' + s * interval '1 h',
       timestamptz '2026-03-01' + (s + 1) * interval '1 h', 40 + s % 9
  FROM prediction.machines m, generate_series(0, 47) AS s;
INSERT INTO prediction.site_regions (tenant_id, site_id, grid_region, recorded_at) VALUES
    ('demo', 'plant', 'AU-NSW', '2026-01-01'), ('demo', 'plant', 'AU-WA-SWIS', '2026-02-01');
INSERT INTO prediction.emission_factors (kind, region, version, kg_co2e_per_unit, unit, source, citation,
                                         valid_from, recorded_at)
VALUES ('electricity', 'CHECK-1', 1, 0.42, 'kWh', 'other', 'backup drill factor', '2026-01-01', '2026-01-01');
COMMIT;

BEGIN;
SET LOCAL ROLE aurumai_auth;
INSERT INTO auth.users (id, tenant_id, username, display_name, email, password_hash, roles)
VALUES ('00000000-0000-4000-8000-000000000001', 'demo', 'admin@demo', 'Admin', 'admin@example.org',
        '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo', ARRAY['admin']),
       ('00000000-0000-4000-8000-000000000002', 'demo', 'operator@demo', 'Operator', NULL,
        '$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$aGFzaDI', ARRAY['operator']),
       ('00000000-0000-4000-8000-000000000003', 'other', 'viewer@other', NULL, NULL, NULL, ARRAY['viewer']);
INSERT INTO auth.clients (client_id, secret_hash, tenant_id, name, redirect_uris, grant_types, audiences, roles, seeded)
VALUES ('aurum-ingestion', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdDM$aGFzaDM', NULL, 'ingestion', '{}',
        ARRAY['client_credentials'], ARRAY['aurumai-prediction'], '{}', true),
       ('web', NULL, 'demo', 'web app', ARRAY['https://app.example.org/cb'],
        ARRAY['authorization_code', 'refresh_token'], ARRAY['aurumai-api'], ARRAY['viewer'], false);
INSERT INTO auth.signing_keys (kid, private_key, public_jwk, retire_after, expires_at)
VALUES ('key-1', 'enc:v1:not-a-real-key', '{"kty": "RSA", "n": "AQAB", "e": "AQAB"}', NULL, NULL);
INSERT INTO auth.devices (id, tenant_id, machine_id, username, created_by, cert_serials)
VALUES ('00000000-0000-4000-8000-0000000000d1', 'demo', 'TRUCK-21', 'dev-truck-21', 'admin@demo', ARRAY['0a1b']),
       ('00000000-0000-4000-8000-0000000000d2', 'demo', 'MILL-3', 'dev-mill-3', 'admin@demo', '{}');
INSERT INTO auth.federated_identities (provider, subject, user_id)
VALUES ('corp', 'sub-123', '00000000-0000-4000-8000-000000000002');
INSERT INTO auth.refresh_tokens (token_hash, family_id, client_id, user_id, session_id, scope, auth_time, expires_at)
VALUES (repeat('c', 64), '00000000-0000-4000-8000-0000000000f1', 'web', '00000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-0000000000e1', 'openid', '2026-03-01', '2026-04-01');
INSERT INTO auth.security_events (at, event, tenant_id, username, ip)
SELECT timestamptz '2026-03-01' + s * interval '1 h', 'login_failed', 'demo', 'admin@demo', '192.0.2.' || s
  FROM generate_series(1, 12) AS s;
INSERT INTO auth.login_attempts (key, failures, last_failure_at) VALUES ('user:admin@demo', 2, '2026-03-01');
INSERT INTO auth.authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge,
                                      session_id, auth_time, family_id, expires_at)
VALUES (repeat('d', 64), 'web', '00000000-0000-4000-8000-000000000001', 'https://app.example.org/cb', 'openid',
        'n-1', repeat('e', 43), '00000000-0000-4000-8000-0000000000e1', '2026-03-01',
        '00000000-0000-4000-8000-0000000000f2', '2026-03-01 00:01:00+00');
INSERT INTO auth.revoked_access_tokens (jti, expires_at) VALUES ('jti-1', '2026-03-01 01:00:00+00');
INSERT INTO auth.revocations (kind, value, issued_before, expires_at) VALUES
    ('token', 'jti-1', NULL, '2026-03-01 01:00:00+00'),
    ('subject', '00000000-0000-0000-0000-000000000001', '2026-03-01', '2026-03-01 00:10:00+00');
INSERT INTO auth.federation_pending (state_hash, provider, browser_hash, nonce, pkce_verifier, login_request, expires_at)
VALUES (repeat('f', 64), 'corp', repeat('0', 64), 'n-2', 'verifier', 'signed-login-form', '2026-03-01 00:10:00+00');
COMMIT;

-- The head is the schema owner's (here the superuser's); the owner's trigger advances it as
-- the gateway's role appends entries that link to it.
INSERT INTO audit.chains (tenant_id, last_seq, last_hash, anchor_hash)
VALUES ('demo', 0, sha256(convert_to('prev0', 'UTF8')), sha256(convert_to('anchor', 'UTF8')));
BEGIN;
SET LOCAL ROLE aurumai_gateway;
INSERT INTO audit.entries (tenant_id, seq, actor, action, resource, outcome, request_id, at, prev_hash, hash)
SELECT 'demo', s, 'admin@demo', 'GET', '/api/v1/machines', 200, 'req-' || s,
       timestamptz '2026-03-01' + s * interval '1 min',
       sha256(convert_to('prev' || (s - 1), 'UTF8')), sha256(convert_to('prev' || s, 'UTF8'))
  FROM generate_series(1, 40) AS s ORDER BY s;
COMMIT;
SQL

step "snapshot of ${db}"
snapshot "${AURUMAI_PG_HOST}" "${AURUMAI_PG_PORT}" "${db}" "${work}/before.txt"
n_tables="$(grep -c '^rows ' "${work}/before.txt")"
n_rows="$(awk '$1 == "rows" { s += $3 } END { print s + 0 }' "${work}/before.txt")"
n_nonempty="$(awk '$1 == "rows" && $3 > 0 { n++ } END { print n + 0 }' "${work}/before.txt")"
n_facts="$(wc -l <"${work}/before.txt")"
[[ "${n_nonempty}" -eq "${n_tables}" ]] || fail "only ${n_nonempty} of ${n_tables} tables have rows: the seed data did not load"
log "snapshot: ${n_tables} tables (${n_nonempty} with rows), ${n_rows} rows, ${n_facts} facts compared"
log "rows per table: $(awk '$1 == "rows" { printf "%s%s=%s", sep, $2, $3; sep = " " }' "${work}/before.txt")"

# --- 2. Keys and the backup. ---
step "throw-away age keys and aurum-backup"
keys="${work}/keys"
mkdir -m 700 "${keys}"
age-keygen -o "${keys}/ops.key" 2>/dev/null
age-keygen -o "${keys}/escrow.key" 2>/dev/null
age-keygen -o "${keys}/stranger.key" 2>/dev/null
{
    printf '# AurumAI backup recipients (public keys only)\n\n'
    printf '# operations\n'
    age-keygen -y "${keys}/ops.key"
    printf '   # escrow, indented on purpose\n'
    printf '  %s  \n' "$(age-keygen -y "${keys}/escrow.key")"
} >"${keys}/recipients.txt"
out="${work}/backups"
mkdir -m 700 "${out}"
# Two older backups (and a stale temporary file) for retention to act on.
for old in 20200101T000000Z 20200102T000000Z; do
    printf 'not a real backup\n' >"${out}/aurumai-${old}.dump.age"
    printf '%064d  aurumai-%s.dump.age\n' 0 "${old}" >"${out}/aurumai-${old}.dump.age.sha256"
done
printf 'left by a killed run\n' >"${out}/.aurumai-20200103T000000Z.dump.age.partial"
printf 'unrelated\n' >"${out}/notes.txt"

# run_backup LOG ARGS...: aurum-backup against the local server, as the check's superuser;
# prints the new file (its stdout) and keeps its log.
run_backup() {
    local logfile="$1"
    shift
    env PGHOST="${AURUMAI_PG_HOST}" PGPORT="${AURUMAI_PG_PORT}" PGUSER="${AURUMAI_PG_SUPERUSER}" \
        PGDATABASE="${db}" PGSSLMODE=disable \
        AURUM_BACKUP_DIR="${out}" AURUM_BACKUP_KEEP=2 AURUM_BACKUP_RECIPIENTS_FILE="${keys}/recipients.txt" \
        bash "${backup_sh}" "$@" 2>"${logfile}"
}

t0=${SECONDS}
backup="$(run_backup "${work}/backup.log")" || {
    cat "${work}/backup.log" >&2
    fail "aurum-backup failed"
}
backup_s=$((SECONDS - t0))
sed 's/^/    /' "${work}/backup.log" >&2
[[ -f "${backup}" ]] || fail "aurum-backup printed '${backup}', which is not a file"
[[ "$(basename "${backup}")" =~ ^aurumai-[0-9]{8}T[0-9]{6}Z\.dump\.age$ ]] || fail "unexpected backup name $(basename "${backup}")"
[[ -f "${backup}.sha256" ]] || fail "no sha256 sidecar"
[[ "$(stat -c %a "${backup}")" == 600 ]] || fail "the backup's mode is $(stat -c %a "${backup}"), not 600"

# Not plaintext: no pg_dump magic, an age header, unreadable by pg_restore.
[[ "$(head -c 5 "${backup}")" != "PGDMP" ]] || fail "the backup is an unencrypted pg_dump archive"
grep -aq 'PGDMP' "${backup}" && fail "the backup contains the pg_dump magic in the clear"
[[ "$(head -n 1 "${backup}")" == "age-encryption.org/v1" ]] || fail "the backup is not an age file"
for marker in TRUCK-21 'admin@demo' 'bearing replaced' 'CREATE TABLE'; do
    grep -aqF -- "${marker}" "${backup}" && fail "the backup shows '${marker}' in the clear"
done
if pg_restore --list "${backup}" >/dev/null 2>&1; then
    fail "pg_restore can read the encrypted backup"
fi
# Either recipient's key opens it, and what it opens is a pg_dump archive.
for key in ops escrow; do
    magic="$(age --decrypt --identity "${keys}/${key}.key" "${backup}" | head -c 5 || true)"
    [[ "${magic}" == "PGDMP" ]] || fail "the ${key} key does not decrypt the backup to a pg_dump archive"
done
(cd "${out}" && sha256sum --quiet -c "$(basename "${backup}").sha256") || fail "the sha256 sidecar does not match"

# Retention (AURUM_BACKUP_KEEP=2): the oldest fake went, the newer fake and the new backup stay;
# the stale temporary file is gone; other files are left alone.
mapfile -t kept < <(cd "${out}" && find . -maxdepth 1 -name 'aurumai-*' -printf '%f\n' | LC_ALL=C sort)
expected=("aurumai-20200102T000000Z.dump.age" "aurumai-20200102T000000Z.dump.age.sha256"
    "$(basename "${backup}")" "$(basename "${backup}").sha256")
mapfile -t expected < <(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)
[[ "${kept[*]}" == "${expected[*]}" ]] || fail "retention kept '${kept[*]}', expected '${expected[*]}'"
[[ ! -e "${out}/.aurumai-20200103T000000Z.dump.age.partial" ]] || fail "a stale temporary file was left"
[[ -f "${out}/notes.txt" ]] || fail "retention removed a file that is not a backup"
grep -q 'removed aurumai-20200101T000000Z.dump.age' "${work}/backup.log" || fail "retention did not log what it removed"

step "aurum-backup refusals: no recipients, a private key as recipient, a failing pg_dump"
if env PGHOST="${AURUMAI_PG_HOST}" PGPORT="${AURUMAI_PG_PORT}" PGUSER="${AURUMAI_PG_SUPERUSER}" PGDATABASE="${db}" \
    AURUM_BACKUP_DIR="${out}" bash "${backup_sh}" >/dev/null 2>"${work}/norecip.log"; then
    fail "aurum-backup ran without recipients"
fi
grep -q 'no recipients' "${work}/norecip.log" || fail "the refusal without recipients does not say why"
grep -v '^#' "${keys}/ops.key" >"${keys}/wrong-recipients.txt"
if run_backup "${work}/privkey.log" --recipients-file "${keys}/wrong-recipients.txt" >/dev/null; then
    fail "aurum-backup accepted a private key as recipient"
fi
grep -q 'PRIVATE key' "${work}/privkey.log" || fail "the private-key refusal does not say why"
grep -q 'AGE-SECRET-KEY-1' "${work}/privkey.log" && fail "aurum-backup printed the private key it refused"
failed_out="${work}/backups-failed"
mkdir -m 700 "${failed_out}"
if env PGHOST="${AURUMAI_PG_HOST}" PGPORT="${AURUMAI_PG_PORT}" PGUSER="${AURUMAI_PG_SUPERUSER}" \
    PGDATABASE="${db}_does_not_exist" PGSSLMODE=disable \
    AURUM_BACKUP_DIR="${failed_out}" AURUM_BACKUP_RECIPIENTS_FILE="${keys}/recipients.txt" \
    bash "${backup_sh}" >/dev/null 2>"${work}/nodb.log"; then
    fail "aurum-backup succeeded although pg_dump failed"
fi
grep -q 'pg_dump failed' "${work}/nodb.log" || { cat "${work}/nodb.log" >&2; fail "the pg_dump failure is not reported"; }
leftover="$(find "${failed_out}" -mindepth 1 -maxdepth 1 ! -name .aurum-backup.lock -printf '%f ')"
[[ -z "${leftover}" ]] || fail "a failed backup left files behind: ${leftover}"

# --- 3. Restores that must fail, creating nothing. ---
# run_restore LOG ARGS...: aurum-restore against the local server.
run_restore() {
    local logfile="$1"
    shift
    env PGHOST="${AURUMAI_PG_HOST}" PGPORT="${AURUMAI_PG_PORT}" PGUSER="${AURUMAI_PG_SUPERUSER}" PGSSLMODE=disable \
        bash "${restore_sh}" "$@" 2>"${logfile}"
}
db_exists() {
    [[ "$(pg_psql -d postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = '$1'")" == 1 ]]
}

step "aurum-restore refusals: wrong identity, corrupted file, forged checksum"
if run_restore "${work}/wrongkey.log" --identity "${keys}/stranger.key" --dbname "${db}_wrongkey" --create-db "${backup}"; then
    fail "aurum-restore succeeded with an identity the backup was not encrypted to"
fi
grep -q 'cannot decrypt' "${work}/wrongkey.log" || { cat "${work}/wrongkey.log" >&2; fail "the wrong-identity failure does not say why"; }
db_exists "${db}_wrongkey" && fail "a failed restore (wrong identity) left database ${db}_wrongkey"

size="$(stat -c %s "${backup}")"
mkdir -m 700 "${work}/tampered" "${work}/forged"
# One byte flipped near the end, inside the encrypted payload.
flip_at=$((size - 100))
for d in tampered forged; do
    cp "${backup}" "${work}/${d}/$(basename "${backup}")"
    python3 - "${work}/${d}/$(basename "${backup}")" "${flip_at}" <<'PY'
import sys
path, at = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x01]))
PY
done
cp "${backup}.sha256" "${work}/tampered/"
if run_restore "${work}/tampered.log" --identity "${keys}/ops.key" --dbname "${db}_tampered" --create-db \
    "${work}/tampered/$(basename "${backup}")"; then
    fail "aurum-restore accepted a file whose checksum does not match"
fi
grep -q 'checksum mismatch' "${work}/tampered.log" || fail "the checksum failure does not say so"
db_exists "${db}_tampered" && fail "a failed restore (checksum) left database ${db}_tampered"
# The checksum forged to match: age's authentication must still catch it, and the one
# transaction must leave nothing.
(cd "${work}/forged" && sha256sum "$(basename "${backup}")" >"$(basename "${backup}").sha256")
if run_restore "${work}/forged.log" --identity "${keys}/ops.key" --dbname "${db}_forged" --create-db \
    "${work}/forged/$(basename "${backup}")"; then
    fail "aurum-restore accepted a tampered file"
fi
grep -q 'decryption failed mid-stream' "${work}/forged.log" || { cat "${work}/forged.log" >&2; fail "the tampering is not reported as such"; }
grep -q 'restoring into' "${work}/forged.log" || fail "the tampered restore did not get as far as pg_restore: the rollback was not exercised"
grep -q "dropping the database ${db}_forged" "${work}/forged.log" || fail "the tampered restore did not drop the database it created"
db_exists "${db}_forged" && fail "a failed restore (tampered file) left database ${db}_forged"

# --- 4. Drop, restore into the same cluster, compare. ---
step "dropping ${db} and restoring it with aurum-restore"
pg_psql -d postgres -c "DROP DATABASE \"${db}\" WITH (FORCE)"
db_exists "${db}" && fail "${db} was not dropped"
t0=${SECONDS}
run_restore "${work}/restore.log" --identity "${keys}/ops.key" --dbname "${db}" --create-db "${backup}" || {
    cat "${work}/restore.log" >&2
    fail "aurum-restore failed"
}
restore_s=$((SECONDS - t0))
sed 's/^/    /' "${work}/restore.log" >&2
grep -q 'creating role' "${work}/restore.log" && fail "the restore created roles although they exist"
snapshot "${AURUMAI_PG_HOST}" "${AURUMAI_PG_PORT}" "${db}" "${work}/after.txt"
compare_snapshots "${work}/before.txt" "${work}/after.txt" "same-cluster restore"
log "same cluster: ${n_tables} tables, ${n_rows} rows, ${n_facts} facts identical after the restore"

# The privileges work as before: what a role may do, and what it may not.
step "the service roles' privileges after the restore"
pg_psql -d "${db}" >/dev/null <<'SQL'
BEGIN;
SET LOCAL ROLE aurumai_readonly;
SELECT count(*) FROM ingestion.telemetry;
SELECT count(*) FROM audit.entries;
RESET ROLE;
SET LOCAL ROLE aurumai_ingestion;
-- The owner of the partitioned table can still add partitions.
CREATE TABLE ingestion.telemetry_p20260304 PARTITION OF ingestion.telemetry
    FOR VALUES FROM ('2026-03-04 00:00:00+00') TO ('2026-03-05 00:00:00+00');
RESET ROLE;
-- Retention is the migration role's; the gateway appends to the restored head.
SELECT audit.apply_retention(36500);
SET LOCAL ROLE aurumai_gateway;
INSERT INTO audit.entries (tenant_id, seq, actor, action, resource, outcome, request_id, at, prev_hash, hash)
VALUES ('demo', 41, 'admin@demo', 'GET', '/api/v1/machines', 200, 'req-41', now(),
        sha256(convert_to('prev40', 'UTF8')), sha256(convert_to('prev41', 'UTF8')));
ROLLBACK;
SQL
expect_denied() {
    local role="$1" sql="$2" out
    if out="$(pg_psql -d "${db}" -c "BEGIN; SET LOCAL ROLE ${role}; ${sql}; ROLLBACK;" 2>&1)"; then
        fail "${role} may run '${sql}' after the restore"
    fi
    grep -q 'permission denied' <<<"${out}" || fail "${role} running '${sql}' failed for another reason: ${out}"
}
expect_denied aurumai_gateway "UPDATE audit.entries SET actor = 'x'"
expect_denied aurumai_gateway "SELECT audit.apply_retention(1)"
expect_denied aurumai_readonly "SELECT count(*) FROM auth.users"
expect_denied aurumai_prediction "DELETE FROM prediction.emission_factors"
expect_denied aurumai_ingestion "SELECT count(*) FROM prediction.models"

# --- 5. A new cluster, without the roles, with password authentication. ---
pg_bin=""
for candidate in $(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V -r); do
    pg_bin="$(dirname "${candidate}")"
    break
done
if [[ -z "${pg_bin}" ]]; then
    warn "no initdb (PostgreSQL server binaries) on this machine: the restore into a new cluster is skipped"
else
    step "a throw-away cluster ($("${pg_bin}/postgres" --version | awk '{ print $3 }')) for the new-server restore"
    if [[ "${EUID}" -eq 0 ]]; then
        # Under /tmp, not TMPDIR: the postgres user must be able to reach it.
        cluster_dir="$(mktemp -d /tmp/aurum-backup-cluster.XXXXXX)"
        id postgres >/dev/null 2>&1 || fail "running as root, but there is no postgres user to run a cluster as"
        chown postgres: "${cluster_dir}"
        as_pg_owner=(runuser -u postgres --)
    else
        cluster_dir="$(mktemp -d "${TMPDIR:-/tmp}/aurum-backup-cluster.XXXXXX")"
        as_pg_owner=(env)
    fi
    chmod 700 "${cluster_dir}"
    cluster_port="$(free_port)"
    "${as_pg_owner[@]}" "${pg_bin}/initdb" -D "${cluster_dir}/data" -U "${AURUMAI_PG_SUPERUSER}" -E UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --no-sync >"${work}/initdb.log" 2>&1 || {
        cat "${work}/initdb.log" >&2
        fail "initdb failed"
    }
    "${as_pg_owner[@]}" "${pg_bin}/pg_ctl" -D "${cluster_dir}/data" -l "${cluster_dir}/server.log" -w -t 30 \
        -o "-p ${cluster_port} -k ${cluster_dir} -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || {
        cat "${cluster_dir}/server.log" >&2
        fail "the throw-away cluster did not start"
    }
    # The superuser's password: generated, with the characters a password file must escape.
    password="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n'):x\\y"
    (umask 077 && printf '%s\n' "${password}" >"${keys}/cluster-password")
    printf "ALTER ROLE %s PASSWORD '%s';\n" "${AURUMAI_PG_SUPERUSER}" "${password}" \
        | "${as_pg_owner[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "${cluster_dir}" -p "${cluster_port}" \
            -U "${AURUMAI_PG_SUPERUSER}" -d postgres
    # Over TCP the cluster wants the password: without it nothing connects.
    if PGPASSFILE=/dev/null psql -X -w -h 127.0.0.1 -p "${cluster_port}" -U "${AURUMAI_PG_SUPERUSER}" -d postgres \
        -c 'SELECT 1' >/dev/null 2>&1; then
        fail "the throw-away cluster lets the superuser in without a password"
    fi

    # run_cluster_restore LOG ARGS...: aurum-restore against the throw-away cluster, with the
    # password from PGPASSWORD_FILE.
    run_cluster_restore() {
        local logfile="$1"
        shift
        env -u PGPASSFILE -u PGPASSWORD PGHOST=127.0.0.1 PGPORT="${cluster_port}" PGUSER="${AURUMAI_PG_SUPERUSER}" \
            PGSSLMODE=disable PGPASSWORD_FILE="${keys}/cluster-password" AURUM_RESTORE_IDENTITY_FILE="${keys}/escrow.key" \
            bash "${restore_sh}" "$@" 2>"${logfile}"
    }
    step "restore into the new cluster without its roles: must refuse"
    if run_cluster_restore "${work}/noroles.log" --dbname aurumai --create-db "${backup}"; then
        fail "aurum-restore restored into a cluster that lacks the service roles"
    fi
    grep -q 'roles missing' "${work}/noroles.log" || { cat "${work}/noroles.log" >&2; fail "the missing roles are not reported"; }
    for role in aurumai_ingestion aurumai_prediction aurumai_auth aurumai_gateway aurumai_readonly; do
        grep -q "${role}" "${work}/noroles.log" || fail "the missing role ${role} is not named"
    done

    step "restore into the new cluster with --create-roles (escrow key, password from PGPASSWORD_FILE)"
    t0=${SECONDS}
    run_cluster_restore "${work}/cluster-restore.log" --dbname aurumai --create-db --create-roles "${backup}" || {
        cat "${work}/cluster-restore.log" >&2
        fail "aurum-restore into the new cluster failed"
    }
    cluster_restore_s=$((SECONDS - t0))
    sed 's/^/    /' "${work}/cluster-restore.log" >&2
    [[ "$(grep -c 'creating role' "${work}/cluster-restore.log")" -eq 5 ]] || fail "the restore did not create the five service roles"

    # Compare, connecting with the password through a private password file.
    esc="${password//\\/\\\\}"
    esc="${esc//:/\\:}"
    (umask 077 && printf '127.0.0.1:%s:*:%s:%s\n' "${cluster_port}" "${AURUMAI_PG_SUPERUSER}" "${esc}" >"${keys}/pgpass")
    unset esc
    PGPASSFILE="${keys}/pgpass" snapshot 127.0.0.1 "${cluster_port}" aurumai "${work}/cluster.txt"
    compare_snapshots "${work}/before.txt" "${work}/cluster.txt" "new-cluster restore"
    roles_ok="$(PGPASSFILE="${keys}/pgpass" psql_on 127.0.0.1 "${cluster_port}" postgres -At <<'SQL'
SELECT string_agg(rolname || ':' || rolcanlogin || ':' || rolsuper || ':' || rolcreaterole || ':' || (rolpassword IS NULL), ',' ORDER BY rolname)
  FROM pg_authid WHERE rolname LIKE 'aurumai\_%';
SQL
)"
    [[ "${roles_ok}" == "aurumai_auth:true:false:false:true,aurumai_gateway:true:false:false:true,aurumai_ingestion:true:false:false:true,aurumai_prediction:true:false:false:true,aurumai_readonly:false:false:false:true" ]] \
        || fail "the created roles have unexpected attributes: ${roles_ok}"
    log "new cluster: roles created as the migrations create them; ${n_tables} tables, ${n_rows} rows, ${n_facts} facts identical"

    step "aurum-backup against the new cluster (password from PGPASSWORD_FILE)"
    out2="${work}/backups2"
    mkdir -m 700 "${out2}"
    backup2="$(env -u PGPASSFILE -u PGPASSWORD PGHOST=127.0.0.1 PGPORT="${cluster_port}" PGUSER="${AURUMAI_PG_SUPERUSER}" \
        PGDATABASE=aurumai PGSSLMODE=disable PGPASSWORD_FILE="${keys}/cluster-password" \
        AURUM_BACKUP_DIR="${out2}" AURUM_BACKUP_RECIPIENTS_FILE="${keys}/recipients.txt" \
        bash "${backup_sh}" 2>"${work}/backup2.log")" || {
        cat "${work}/backup2.log" >&2
        fail "aurum-backup with PGPASSWORD_FILE failed"
    }
    [[ -s "${backup2}" ]] || fail "aurum-backup with PGPASSWORD_FILE wrote nothing"
    grep -q 'password from PGPASSWORD_FILE' "${work}/backup2.log" || fail "the backup did not use PGPASSWORD_FILE"
    # The restored data, backed up again, decrypts to the same table of contents.
    # (Dump ids and object OIDs differ between the two clusters: compare the entries only.)
    toc() {
        age -d -i "${keys}/ops.key" "$1" | pg_restore -l | grep -v '^;' | awk '{ $1 = ""; $3 = ""; print }' | LC_ALL=C sort
    }
    diff <(toc "${backup}") <(toc "${backup2}") \
        >"${work}/toc.diff" || {
        head -n 40 "${work}/toc.diff" >&2
        fail "the backup of the restored database has a different table of contents"
    }
fi

# --- Nothing secret in any log. ---
step "no secret in the logs"
secrets=()
for key in ops escrow stranger; do
    secrets+=("$(grep '^AGE-SECRET-KEY-' "${keys}/${key}.key")")
done
[[ -f "${keys}/cluster-password" ]] && secrets+=("$(<"${keys}/cluster-password")")
for logfile in "${work}"/*.log; do
    for s in "${secrets[@]}"; do
        if grep -qF -- "${s}" "${logfile}"; then
            fail "$(basename "${logfile}") contains a private key or password"
        fi
    done
done
unset secrets password

log "backup check passed in $((SECONDS - t_start))s: ${n_tables} tables, ${n_rows} rows and ${n_facts} facts (counts, row checksums, owners, grants, schema) identical after restoring into the same cluster (backup ${backup_s}s, restore ${restore_s}s)${cluster_restore_s:+ and into a new cluster without the roles (restore ${cluster_restore_s}s)}; wrong key, corrupted and tampered files refused"
