#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz (libFuzzer) target of fuzz/ for FUZZ_SECONDS each (600 by
# default), one after the other, and prints a summary table: executions, executions per second,
# coverage (libFuzzer's cov and ft), corpus size and the result of each target.
#
#   deploy/scripts/fuzz.sh [TARGET...]          (default: every target; see docs/fuzzing.md)
#   FUZZ_SECONDS=30 deploy/scripts/fuzz.sh      (a short run)
#
# Each target runs on a copy of its seed corpus (fuzz/corpus/<target>/) in a temporary
# directory, so the repository's corpus stays as it is. Builds and runs are niced (nice 19),
# one libFuzzer process at a time. Fails when a target leaves a crash, leak, timeout or
# out-of-memory artifact (copied to fuzz/artifacts/<target>/, git-ignored) or exits non-zero.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds="${FUZZ_SECONDS:-600}"
[[ "${seconds}" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_SECONDS must be a positive number of seconds, got ${seconds:?}"
toolchain="${AURUMAI_FUZZ_TOOLCHAIN:-nightly}"
fuzz_dir="${AURUMAI_ROOT}/fuzz"

ensure_build_deps
have rustup || die "rustup not found: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly)"
rustup run "${toolchain}" rustc --version >/dev/null 2>&1 \
    || die "no ${toolchain} toolchain: rustup toolchain install ${toolchain}"
if ! cargo "+${toolchain}" fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    nice -n 19 cargo install cargo-fuzz --locked
fi

cd "${fuzz_dir}"
mapfile -t all < <(cargo "+${toolchain}" fuzz list)
if [[ "$#" -gt 0 ]]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        known=0
        for a in "${all[@]}"; do
            [[ "${a}" == "${t}" ]] && known=1
        done
        [[ "${known}" == 1 ]] || die "no fuzz target ${t} (targets: ${all[*]})"
    done
else
    targets=("${all[@]}")
fi

log "building ${#targets[@]} fuzz targets (cargo +${toolchain} fuzz build, release with debug assertions, AddressSanitizer)"
if [[ "$#" -gt 0 ]]; then
    for t in "${targets[@]}"; do
        nice -n 19 cargo "+${toolchain}" fuzz build "${t}"
    done
else
    nice -n 19 cargo "+${toolchain}" fuzz build
fi
triple="$(rustc "+${toolchain}" -vV | sed -n 's/^host: //p')"
bin_dir="${fuzz_dir}/target/${triple}/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/aurumai-fuzz.XXXXXX")"
trap 'rm -rf -- "${work}"' EXIT

# The last value of a libFuzzer statistic in a log, or "-".
final_stat() {
    local value
    value="$(sed -n "s/^stat::$1: *\([0-9][0-9]*\).*/\1/p" "$2" | tail -n 1)"
    printf '%s\n' "${value:--}"
}

# The coverage of a log's last status line ("#N ... cov: C ft: F ..."), as "C F", or "- -".
final_cov() {
    local line
    line="$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$1" | tail -n 1 || true)"
    if [[ -n "${line}" ]]; then
        sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/' <<<"${line}"
    else
        printf -- '- -\n'
    fi
}

rows=()
failed=()
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
for t in "${targets[@]}"; do
    dir="${work}/${t}"
    mkdir -p "${dir}/corpus" "${dir}/artifacts" "${dir}/tmp"
    if [[ -d "${fuzz_dir}/corpus/${t}" ]]; then
        cp -R "${fuzz_dir}/corpus/${t}/." "${dir}/corpus/"
    fi
    seeds="$(find "${dir}/corpus" -type f | wc -l)"
    log "fuzzing ${t} for ${seconds} s (${seeds} seeds)"
    rc=0
    # -jobs=1 -workers=1: one worker process, whose output libFuzzer writes to fuzz-0.log in
    # the working directory.
    (
        cd "${dir}"
        TMPDIR="${dir}/tmp" nice -n 19 "${bin_dir}/${t}" \
            -max_total_time="${seconds}" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
            -jobs=1 -workers=1 -print_final_stats=1 \
            -artifact_prefix="${dir}/artifacts/" "${dir}/corpus"
    ) >"${dir}/driver.log" 2>&1 || rc=$?
    logfile="${dir}/fuzz-0.log"
    [[ -f "${logfile}" ]] || logfile="${dir}/driver.log"

    execs="$(final_stat number_of_executed_units "${logfile}")"
    rate="$(final_stat average_exec_per_sec "${logfile}")"
    read -r cov ft < <(final_cov "${logfile}")
    corpus="$(find "${dir}/corpus" -type f | wc -l)"
    mapfile -t found < <(find "${dir}/artifacts" -type f -printf '%f\n' | sort)
    result="ok"
    if [[ "${#found[@]}" -gt 0 || "${rc}" -ne 0 ]]; then
        kinds="$(printf '%s\n' "${found[@]}" | sed -n 's/^\(crash\|leak\|timeout\|oom\|slow-unit\)-.*/\1/p' | sort -u | paste -sd, -)"
        result="FAILED${kinds:+ (${kinds})}"
        [[ "${rc}" -ne 0 ]] && result="${result} exit ${rc}"
        failed+=("${t}")
        mkdir -p "${fuzz_dir}/artifacts/${t}"
        if [[ "${#found[@]}" -gt 0 ]]; then
            cp "${dir}/artifacts/"* "${fuzz_dir}/artifacts/${t}/"
        fi
        cp "${logfile}" "${fuzz_dir}/artifacts/${t}/fuzz.log"
        warn "${t}: ${result}; artifacts and log in fuzz/artifacts/${t}/"
        grep -m 5 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)' "${logfile}" >&2 || true
    fi
    rows+=("$(printf '%-20s %12s %8s %7s %8s %8s  %s' "${t}" "${execs}" "${rate}" "${cov}" "${ft}" "${corpus}" "${result}")")
done

printf '\nFuzzing summary: %s s per target, started %s, %s, nice 19, -jobs=1 -workers=1\n\n' \
    "${seconds}" "${started}" "$(nproc) cores"
printf '%-20s %12s %8s %7s %8s %8s  %s\n' target executions exec/s cov ft corpus result
for row in "${rows[@]}"; do
    printf '%s\n' "${row}"
done
echo

if [[ "${#failed[@]}" -gt 0 ]]; then
    die "fuzzing found problems in: ${failed[*]} (see fuzz/artifacts/)"
fi
log "fuzzing passed: no crash, leak, timeout or out-of-memory in ${#targets[@]} targets"
