#!/usr/bin/env bash
# Checks the Grafana dashboards (deploy/grafana/*.json) and the Prometheus alert rules
# (deploy/prometheus/alerts.yaml) against the metrics the Rust sources define and the runbook
# (docs/alerts.md). See deploy/scripts/observability-check.py for what fails.
#
#   deploy/scripts/observability-check.sh [--self-test] [--list-metrics]
#
# PyYAML and promql-parser (a PromQL parser, prebuilt wheels) are installed from PyPI into
# target/observability-tools on the first run; nothing is built.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"
tools="${AURUMAI_ROOT}/target/observability-tools"
py="${tools}/bin/python"
pkgs=(pyyaml==6.0.3 promql-parser==0.11.0)

if [[ ! -x "${py}" ]] || ! "${py}" -c 'import yaml, promql_parser' 2>/dev/null; then
    have python3 || need_apt python3
    python3 -m venv "${tools}" 2>/dev/null || { need_apt python3-venv; python3 -m venv "${tools}"; }
    log "installing ${pkgs[*]} (PyPI) into target/observability-tools"
    "${tools}/bin/pip" install --quiet --disable-pip-version-check "${pkgs[@]}"
fi

exec "${py}" deploy/scripts/observability-check.py "$@"
