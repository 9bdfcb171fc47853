#!/usr/bin/env bash
# `make helm-lint` (also run by `make test`): checks the Helm chart helm/aurumai without a helm
# binary or a cluster.
#
#   For the default values, ci/production-values.yaml and ci/trial-values.yaml:
#     1. helm lint --strict (Kubernetes 1.31), through helm-python-sdk (the Helm Go SDK);
#     2. render the release (install; the default values also as an upgrade), hooks included;
#     3. kubernetes-validate --strict (Kubernetes 1.31 schemas) on every rendered manifest; custom
#        resources it has no schema for are excluded by kind, explicitly (ServiceMonitor);
#     4. the chart's own rules (deploy/scripts/helm_tool.py policy): the restricted Pod Security
#        Standard on every pod and container, automountServiceAccountToken false, resources,
#        startup/liveness/readiness probes, a default-deny NetworkPolicy, pre-install hooks
#        that use only objects created before them, and the gateway as the only public entry
#        (every Ingress backend is its Service; the ingress controller reaches no other pod);
#   the wiring of the issuer (https://<host>/auth everywhere), auth's internal addresses and
#   X-Forwarded-For trust, for the default values and with the ingress off;
#   5. checkov on all rendered manifests, failing on any finding not waived below (each waiver
#      names the check, the resources and the reason);
#   6. canaries, so that a pass proves something: values the chart must refuse (schema and
#      template checks), a manifest kubernetes-validate must refuse, one the policy check must
#      refuse (and a hook order it must refuse, and an Ingress and NetworkPolicy that expose
#      auth), one checkov must flag; and the broker's init script run against temporary files.
#
# Tools live in target/helm-tools (a virtualenv; pinned versions from PyPI, installed on first
# use). Rendered files are kept in target/helm-lint/ for inspection.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"
started=${SECONDS}

chart="helm/aurumai"
kube_version="1.31.0"
# Pinned tools (PyPI). helm-python-sdk bundles the Helm v4 Go SDK.
pins=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 checkov==3.3.30)
# Custom resources the chart renders, which kubernetes-validate has no schema for.
crd_kinds=(monitoring.coreos.com/v1/ServiceMonitor)

tools="${AURUMAI_ROOT}/target/helm-tools"
out="${AURUMAI_ROOT}/target/helm-lint"
py="${tools}/bin/python"
tool=(env PYTHONDONTWRITEBYTECODE=1 "${py}" "${AURUMAI_ROOT}/deploy/scripts/helm_tool.py")

# --- Tools ---------------------------------------------------------------------------------------
if [[ ! -x "${py}" || "$(cat "${tools}/.pins" 2>/dev/null)" != "${pins[*]}" ]]; then
    have python3 || need_apt python3
    python3 -m venv "${tools}" 2>/dev/null || {
        need_apt python3-venv
        rm -rf "${tools}"
        python3 -m venv "${tools}"
    }
    log "installing ${pins[*]} (PyPI) into target/helm-tools"
    "${tools}/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
    printf '%s' "${pins[*]}" >"${tools}/.pins"
fi
"${py}" -c 'import helm_python, yaml' || die "helm-python-sdk is not importable from ${tools}"

rm -rf "${out}"
mkdir -p "${out}"

# --- Checkov waivers ---------------------------------------------------------------------------
# CHECK_ID  RESOURCE (regular expression over checkov's Kind.namespace.name)  REASON
# Every waiver must match at least one finding, or the run fails (no stale waivers).
cat >"${out}/checkov-waivers.txt" <<'WAIVERS'
# Images are pinned by version tag (the chart's appVersion; third-party images by exact version).
# Digests exist only once an image is built and pushed: the delivery pipeline passes them as
# <service>.image.digest, which renders tag@digest (ci/trial-values.yaml checks that form).
CKV_K8S_43  .*  digests are set per release by the delivery pipeline (<service>.image.digest); tags are exact versions
# With exact version tags (or digests) IfNotPresent pulls once per node and lets pods start during
# a registry outage. Clusters shared with untrusted tenants set image.pullPolicy=Always (or the
# AlwaysPullImages admission plugin).
CKV_K8S_15  .*  exact version tags make IfNotPresent safe; image.pullPolicy=Always is available for shared clusters
# The bundled broker and database (trials) run as their official images' own users.
CKV_K8S_40  StatefulSet\.[^.]+\..*-(mosquitto|postgresql)  the official images own their files as uid 1883 (mosquitto) and 999 (postgres); both still run non-root under the restricted standard
# The simulator (off by default) is a client with no listening port and no shell in its image.
CKV_K8S_8  Deployment\.[^.]+\..*-simulator  the simulator listens on no port and its distroless image has no shell: nothing to probe, a crash restarts it
CKV_K8S_9  Deployment\.[^.]+\..*-simulator  the simulator listens on no port and its distroless image has no shell: nothing to probe, a crash restarts it
CKV_K8S_35  Deployment\.[^.]+\..*-simulator  aurum-sim reads its device password only from AURUM_MQTT_PASSWORD (no file option); the value comes from a Secret reference
WAIVERS

# --- 1-4: lint, render, validate, policy, per set of values -------------------------------------
configs=(default production trial)
declare -A values_args=(
    [default]=""
    [production]="-f ${chart}/ci/production-values.yaml"
    [trial]="-f ${chart}/ci/trial-values.yaml"
)
crd_args=()
for kind in "${crd_kinds[@]}"; do
    crd_args+=(--crd-kind "${kind}")
done
validated=0
excluded=0
rendered_files=()

# validate NAME FILE: kubernetes-validate on FILE's Kubernetes manifests; counts them.
validate() {
    local name="$1" file="$2" report
    "${tool[@]}" split "${file}" --validate "${out}/${name}.k8s.yaml" --crds "${out}/${name}.crds.yaml" \
        "${crd_args[@]}" >"${out}/${name}.split.txt" \
        || die "${name}: $(cat "${out}/${name}.split.txt")"
    report="$("${tools}/bin/kubernetes-validate" --strict -k "${kube_version}" "${out}/${name}.k8s.yaml" 2>&1)" \
        || { printf '%s\n' "${report}" | grep -v ' passed for ' >&2; die "${name}: kubernetes-validate refused manifests"; }
    # A resource without a schema is only a warning for the tool: here it is a failure.
    if grep -q '^WARN' <<<"${report}"; then
        grep '^WARN' <<<"${report}" >&2
        die "${name}: kubernetes-validate could not check every manifest"
    fi
    local passed crds
    passed="$(grep -c ' passed for ' <<<"${report}" || true)"
    crds="$(grep -c '^kind:' "${out}/${name}.crds.yaml" || true)"
    validated=$((validated + passed))
    excluded=$((excluded + crds))
    printf '    kubernetes-validate %s: %s manifests passed, %s custom resources excluded by kind\n' \
        "${kube_version}" "${passed}" "${crds}"
}

for name in "${configs[@]}"; do
    # shellcheck disable=SC2206 # word splitting of "-f FILE" is intended
    vargs=(${values_args[${name}]})
    log "${name} values: lint, render, validate, policy"
    "${tool[@]}" lint "${chart}" "${vargs[@]}" --strict --kube-version "v${kube_version}" >"${out}/${name}.lint.txt" 2>&1 \
        || { cat "${out}/${name}.lint.txt" >&2; die "${name}: helm lint --strict failed"; }
    printf '    %s\n' "$(tail -n 1 "${out}/${name}.lint.txt")"
    "${tool[@]}" template "${chart}" "${vargs[@]}" --namespace aurumai --out "${out}/${name}.yaml" 2>"${out}/${name}.render.txt" \
        || { cat "${out}/${name}.render.txt" >&2; die "${name}: the chart does not render"; }
    rendered_files+=("${name}.yaml")
    validate "${name}" "${out}/${name}.yaml"
    "${tool[@]}" policy "${out}/${name}.yaml" --exempt-probes simulator --expect-network-policies \
        --chart "${chart}" "${vargs[@]}" | sed 's/^/    /' || die "${name}: policy check failed"
done

# The default values as an upgrade: the migration Job becomes a pre-upgrade hook.
log "default values as an upgrade"
"${tool[@]}" template "${chart}" --upgrade --namespace aurumai --out "${out}/upgrade.yaml" 2>"${out}/upgrade.render.txt" \
    || { cat "${out}/upgrade.render.txt" >&2; die "upgrade: the chart does not render"; }
if ! "${py}" - "${out}/upgrade.yaml" <<'PY'; then
import sys, yaml
jobs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Job"]
hooks = [j["metadata"].get("annotations", {}).get("helm.sh/hook", "") for j in jobs]
assert jobs and all("pre-upgrade" in h for h in hooks), hooks
PY
    die "upgrade: the migration Job is not a pre-upgrade hook"
fi
rendered_files+=("upgrade.yaml")
validate upgrade "${out}/upgrade.yaml"
"${tool[@]}" policy "${out}/upgrade.yaml" --exempt-probes simulator --expect-network-policies \
    --chart "${chart}" | sed 's/^/    /' || die "upgrade: policy check failed"

# The issuer and the client address, as the services get them: the default values (ingress on),
# the ingress off (with an issuer), and X-Forwarded-For switched off explicitly.
log "wiring: issuer, auth's internal addresses, X-Forwarded-For"
"${tool[@]}" template "${chart}" --set-json '{"ingress":{"enabled":false},"oidc":{"issuer":"https://api.example.com/auth/"}}' \
    --namespace aurumai --out "${out}/no-ingress.yaml" 2>"${out}/no-ingress.render.txt" \
    || { cat "${out}/no-ingress.render.txt" >&2; die "no-ingress: the chart does not render"; }
"${tool[@]}" template "${chart}" \
    --set-json '{"ingress":{"trustedProxies":[]}}' \
    --namespace aurumai --out "${out}/no-xff.yaml" 2>"${out}/no-xff.render.txt" \
    || { cat "${out}/no-xff.render.txt" >&2; die "no-xff: the chart does not render"; }
"${py}" - "${out}" <<'PY' || die "the services are not wired as the chart promises (issuer, auth addresses, X-Forwarded-For)"
import sys, yaml
out = sys.argv[1]
def env(name):
    """{component: {variable: value}} over every container (init containers too) of a render."""
    found = {}
    for d in yaml.safe_load_all(open(f"{out}/{name}.yaml")):
        if not d or d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        template = d["spec"]["template"]
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        for c in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            found.setdefault(component, {}).update({e["name"]: e.get("value") for e in c.get("env", [])})
    return found
internal = "http://aurumai-auth:8083"
private = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
for name, issuer, trust in (("default", "https://aurumai.example.com/auth", private),
                            ("no-ingress", "https://api.example.com/auth", ""),
                            ("no-xff", "https://aurumai.example.com/auth", "")):
    e = env(name)
    for component in ("gateway", "ingestion", "prediction", "auth", "migrate"):
        got = e[component].get("AURUM_AUTH__ISSUER")
        assert got == issuer, f"{name}: {component} has issuer {got}, not {issuer}"
    for component in ("gateway", "ingestion", "prediction"):
        got = e[component].get("AURUM_AUTH__JWKS_URL")
        assert got == f"{internal}/jwks", f"{name}: {component} fetches keys from {got}"
    assert e["ingestion"]["AURUM_FEATURES__CLIENT__TOKEN_URL"] == f"{internal}/token", name
    assert e["gateway"]["AURUM_UPSTREAMS__AUTH__URL"] == internal, name
    assert e["auth"]["AURUM_AUTH__TRUSTED_PROXIES"] == trust, f"{name}: auth trusted_proxies"
    assert e["gateway"]["AURUM_RATE_LIMIT__TRUSTED_PROXIES"] == trust, f"{name}: gateway trusted_proxies"
# Prometheus reaches the metrics port of each service and nothing else; the API port is open
# to the callers the data flow names only.
docs = [d for d in yaml.safe_load_all(open(f"{out}/default.yaml")) if d]
metrics_port = 9464
for component in ("gateway", "ingestion", "prediction", "auth"):
    e = env("default")[component]
    assert e["AURUM_HTTP__METRICS_PORT"] == str(metrics_port), component
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy"
                  and d["metadata"]["name"].endswith(f"allow-{component}"))
    for rule in policy["spec"]["ingress"]:
        ports = [p["port"] for p in rule["ports"]]
        from_monitoring = any(p.get("namespaceSelector", {}).get("matchLabels", {})
                              .get("kubernetes.io/metadata.name") == "monitoring" for p in rule["from"])
        if from_monitoring:
            assert ports == [metrics_port], f"{component}: monitoring reaches {ports}"
            assert all(p.get("podSelector", {}).get("matchLabels") for p in rule["from"]), \
                f"{component}: every pod of the monitoring namespace may scrape"
        else:
            assert metrics_port not in ports, f"{component}: {rule['from']} reaches the metrics port"
# The production values put the four services in the mesh (mutual TLS between them, the JWKS
# fetch included) and no Job, whose sidecar would never let it finish.
meshed = {}
for d in yaml.safe_load_all(open(f"{out}/production.yaml")):
    if not d or d["kind"] not in ("Deployment", "StatefulSet", "Job", "CronJob"):
        continue
    spec = d["spec"]["jobTemplate"]["spec"] if d["kind"] == "CronJob" else d["spec"]
    meta = spec["template"]["metadata"]
    component = meta["labels"]["app.kubernetes.io/component"]
    meshed[component] = meta.get("annotations", {}).get("linkerd.io/inject") == "enabled"
for component in ("gateway", "ingestion", "prediction", "auth"):
    assert meshed.get(component), f"production: {component} is not in the mesh"
for component in ("migrate", "audit-retention"):
    assert component in meshed and not meshed[component], f"production: {component} is in the mesh"
PY
printf '    issuer https://<host>/auth in every service and the migration Job, JWKS and token URLs internal;\n'
printf '    X-Forwarded-For trusted behind the ingress only, and switched off on request;\n'
printf '    the monitoring namespace'"'"'s Prometheus pods reach the metrics port alone;\n'
printf '    production: the four services in the mesh (mutual TLS), no Job\n'

# --- 6: canaries -------------------------------------------------------------------------------
log "canaries: values and manifests that must be refused"
# refused JSON EXPECTED: rendering with JSON merged into the default values must fail, and the
# error must contain EXPECTED (so that it fails for the intended reason).
refused_count=0
refused() {
    local json="$1" expected="$2" err
    if err="$("${tool[@]}" template "${chart}" --set-json "${json}" --out /dev/null 2>&1)"; then
        die "the chart accepted values it must refuse: ${json}"
    fi
    grep -qF -- "${expected}" <<<"${err}" \
        || die "values ${json} were refused, but not for the expected reason (${expected}):"$'\n'"${err}"
    refused_count=$((refused_count + 1))
}
refused '{"otel":{"protocol":"udp"}}' "/otel/protocol"
refused '{"otel":{"samplingRatio":1.5}}' "/otel/samplingRatio"
refused '{"otel":{"samplingRatio":"half"}}' "/otel/samplingRatio"
refused '{"gateway":{"replicaCount":"two"}}' "/gateway/replicaCount"
refused '{"gateway":{"replicas":3}}' "additional properties 'replicas'"
refused '{"image":{"pullPolicy":"Sometimes"}}' "/image/pullPolicy"
refused '{"postgresql":{"sslmode":"disable"}}' "/postgresql/sslmode"
refused '{"postgresql":{"bundled":{"enabled":false}}}' "/postgresql/external/host"
refused '{"mqtt":{"bundled":{"enabled":false}}}' "/mqtt/external/url"
refused '{"mqtt":{"bundled":{"maxPacketSize":0}}}' "/mqtt/bundled/maxPacketSize"
refused '{"mqtt":{"bundled":{"enabled":false},"external":{"url":"mqtt://broker:1883"}}}' "/mqtt/external/url"
refused '{"oidc":{"issuer":"http://auth.example.com"}}' "/oidc/issuer"
refused '{"oidc":{"issuer":"https://aurumai.example.com/a;b"}}' "/oidc/issuer"
refused '{"ingress":{"oidc":{"enabled":true}}}' "additional properties 'oidc'"
refused '{"backup":{"enabled":true}}' "/backup/recipients"
refused '{"auth":{"config":{"extraClients":[{"clientId":"cli","grantTypes":["client_credentials"]}]}}}' "secretRef"
refused '{"postgresql":{"bundled":{"enabled":false},"external":{"host":"db.example.com"}}}' "postgresql.auth.existingSecret"
refused '{"postgresql":{"bundled":{"enabled":false},"external":{"host":"db.example.com"},"auth":{"existingSecret":"db"}}}' "networkPolicy.database"
refused '{"ingress":{"enabled":false}}' "oidc.issuer is required"
refused '{"ingestion":{"config":{"sharedGroup":""}}}' "ingestion.config.sharedGroup must name a group"
refused '{"ingestion":{"replicaCount":1,"autoscaling":{"enabled":true},"config":{"sharedGroup":""}}}' "ingestion.config.sharedGroup must name a group"
refused '{"ingestion":{"config":{"sharedGroup":"a/b"}}}' "/ingestion/config/sharedGroup"
printf '    %s sets of values refused, each for its own reason\n' "${refused_count}"

# A manifest the Kubernetes schema refuses (strict: a misspelt field) and one that breaks the
# restricted standard: both checks must say no.
cat >"${out}/canary.yaml" <<'CANARY'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: canary
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: canary}
  template:
    metadata:
      labels: {app: canary, app.kubernetes.io/component: canary}
    spec:
      hostNetwork: true
      containers:
        - name: canary
          image: nginx:latest
          securityContext:
            privileged: true
            runAsUser: 0
          volumeMounts:
            - {name: host, mountPath: /host}
      volumes:
        - name: host
          hostPath: {path: /}
CANARY
sed 's/^  replicas: 1$/  replicaz: 1/' "${out}/canary.yaml" >"${out}/canary-schema.yaml"
if "${tools}/bin/kubernetes-validate" --strict --quiet -k "${kube_version}" "${out}/canary-schema.yaml" >/dev/null 2>&1; then
    die "kubernetes-validate --strict accepted a misspelt field: it cannot be trusted"
fi
if "${tool[@]}" policy "${out}/canary.yaml" >"${out}/canary-policy.txt" 2>&1; then
    die "the policy check accepted a privileged root pod: it cannot be trusted"
fi
printf '    kubernetes-validate and the policy check refuse the canary manifest (%s policy problems)\n' \
    "$(grep -c '^  ' "${out}/canary-policy.txt")"
# The upgrade render with the generated Secrets moved after the migration Job: the hook-order
# rule must see that the Job would start before them.
sed 's/helm.sh\/hook-weight: .-10./helm.sh\/hook-weight: "5"/' "${out}/upgrade.yaml" >"${out}/canary-hooks.yaml"
if "${tool[@]}" policy "${out}/canary-hooks.yaml" >/dev/null 2>&1; then
    die "the policy check accepted a migration hook that runs before its Secrets: it cannot be trusted"
fi
printf '    the policy check refuses a migration hook that would run before its Secrets exist\n'
# The default render with an Ingress path to the auth Service and the ingress controller's rule
# moved from the gateway's NetworkPolicy to auth's: the gateway-only rule must see all three.
"${py}" - "${out}/default.yaml" "${out}/canary-public.yaml" <<'PY' || die "cannot build the public-entry canary"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
component = lambda d: (d["spec"].get("selector") or d["spec"].get("podSelector", {}).get("matchLabels") or {}).get("app.kubernetes.io/component")
auth = next(d for d in docs if d["kind"] == "Service" and component(d) == "auth")
ingress = next(d for d in docs if d["kind"] == "Ingress")
ingress["spec"]["rules"][0]["http"]["paths"].append(
    {"path": "/token", "pathType": "Exact", "backend": {"service": {"name": auth["metadata"]["name"], "port": {"name": "http"}}}})
policies = {component(d): d for d in docs if d["kind"] == "NetworkPolicy"}
rules = policies["gateway"]["spec"]["ingress"]
controller = [r for r in rules if any(p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "ingress-nginx" for p in r["from"])]
assert len(controller) == 1, "the default render has no ingress controller rule on the gateway"
rules.remove(controller[0])
policies["auth"]["spec"]["ingress"].append(controller[0])
yaml.safe_dump_all(docs, open(sys.argv[2], "w"), sort_keys=False)
PY
if "${tool[@]}" policy "${out}/canary-public.yaml" --chart "${chart}" >"${out}/canary-public.txt" 2>&1; then
    die "the policy check accepted an Ingress and a NetworkPolicy that expose the auth service: it cannot be trusted"
fi
for expected in "/token goes to Service/aurumai-auth" "NetworkPolicy/aurumai-allow-auth: lets the ingress controller reach auth" \
    "no NetworkPolicy lets the ingress controller reach the gateway"; do
    grep -qF -- "${expected}" "${out}/canary-public.txt" \
        || die "the policy check refused the public-entry canary, but without: ${expected}"$'\n'"$(cat "${out}/canary-public.txt")"
done
printf '    the policy check refuses an Ingress path and an ingress-controller rule to auth (and none to the gateway)\n'

# The broker's init script: writes the first state once, with hashes Mosquitto can check, and
# refuses short passwords.
"${py}" - "${chart}/files/dynsec-init.py" <<'PY' || die "files/dynsec-init.py does not do its job"
import base64, hashlib, json, os, subprocess, sys, tempfile
script = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    def pw(name, value):
        path = os.path.join(d, name)
        open(path, "w").write(value + "\n")
        return path
    state = os.path.join(d, "dynamic-security.json")
    run = lambda admin, ingest: subprocess.run(
        [sys.executable, script, state, "--admin-user", "aurum-admin", "--admin-password-file", admin,
         "--ingestion-user", "aurum-ingestion", "--ingestion-password-file", ingest],
        capture_output=True, text=True)
    short = run(pw("a", "short"), pw("i", "y" * 32))
    assert short.returncode != 0 and not os.path.exists(state), "a short password was accepted"
    first = run(pw("a", "x" * 32), pw("i", "y" * 32))
    assert first.returncode == 0, first.stderr
    data = json.load(open(state))
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"
    users = {c["username"]: c for c in data["clients"]}
    for name, secret in (("aurum-admin", "x" * 32), ("aurum-ingestion", "y" * 32)):
        c = users[name]
        digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), base64.b64decode(c["salt"]), c["iterations"])
        assert base64.b64encode(digest).decode() == c["password"], name
    assert data["defaultACLAccess"]["publishClientSend"] is False
    before = open(state).read()
    again = run(pw("a", "z" * 32), pw("i", "z" * 32))
    assert again.returncode == 0 and open(state).read() == before, "an existing state was overwritten"
    def ingestion_acls(*extra):
        path = os.path.join(d, "acl-%d.json" % len(extra))
        r = subprocess.run(
            [sys.executable, script, path, "--admin-user", "aurum-admin", "--admin-password-file", pw("a", "x" * 32),
             "--ingestion-user", "aurum-ingestion", "--ingestion-password-file", pw("i", "y" * 32), *extra],
            capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        role = next(r for r in json.load(open(path))["roles"] if r["rolename"] == "ingestion")
        return sorted(a["topic"] for a in role["acls"])
    assert ingestion_acls() == ["aurum/v1/+/+/telemetry"], ingestion_acls()
    assert ingestion_acls("--group", "ingestion") == ["$share/ingestion/aurum/v1/+/+/telemetry", "aurum/v1/+/+/telemetry"]
PY
printf '    files/dynsec-init.py: first state written once, PBKDF2-SHA512 hashes verified, short passwords refused, the shared-subscription ACL only with a group\n'

# --- 5: checkov ----------------------------------------------------------------------------------
log "checkov $("${tools}/bin/checkov" --version 2>/dev/null) on ${rendered_files[*]} (and the canary)"
(
    cd "${out}"
    checkov_args=()
    for f in "${rendered_files[@]}" canary.yaml; do
        checkov_args+=(-f "${f}")
    done
    # --skip-download: offline (no guideline or policy download); exit code judged below.
    "${tools}/bin/checkov" "${checkov_args[@]}" --framework kubernetes --skip-download --compact \
        -o json >checkov.json 2>checkov.err || true
)
[[ -s "${out}/checkov.json" ]] || { cat "${out}/checkov.err" >&2; die "checkov produced no report"; }
checkov_summary="$("${tool[@]}" checkov-verdict "${out}/checkov.json" --waivers "${out}/checkov-waivers.txt" \
    --canary-file canary.yaml)" || { printf '%s\n' "${checkov_summary}" >&2; die "checkov found problems"; }
printf '%s\n' "${checkov_summary}" | sed 's/^/    /'

# --- Summary -----------------------------------------------------------------------------------
log "helm-lint passed in $((SECONDS - started)) s: ${#configs[@]} value sets + upgrade linted and rendered," \
    "${validated} manifests validated against Kubernetes ${kube_version} (${excluded} custom resources excluded by kind)," \
    "$(tail -n 1 <<<"${checkov_summary}"), ${refused_count} value canaries refused"
