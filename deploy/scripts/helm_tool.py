#!/usr/bin/env python3
"""Renders, lints and checks the AurumAI Helm chart without a helm binary or a cluster.

A thin wrapper around helm-python-sdk (the Helm Go SDK, `import helm_python`), used by
deploy/scripts/helm-lint.sh (`make helm-lint`). Verbs:

  template CHART [-f VALUES]... [--set-json JSON]... [--upgrade] [--out FILE]
      Render the chart as a release would be installed (or upgraded), hooks included, NOTES.txt
      left out, as one multi-document YAML stream. Values are checked against
      values.schema.json first; a refused value or a failing template exits 1 with Helm's
      message.
  lint CHART [-f VALUES]... [--strict] [--kube-version V]
      `helm lint`: prints every finding; exits 1 on an error, or on a warning with --strict.
  split RENDERED --validate FILE --crds FILE --crd-kind GROUP/VERSION/KIND...
      Separate the custom resources named with --crd-kind (kubernetes-validate knows only the
      Kubernetes API) from the rest; any other kind outside the Kubernetes API groups fails.
  policy RENDERED [--exempt-probes COMPONENT]... [--chart CHART [-f VALUES]... [--set-json JSON]...]
      The chart's own rules: the restricted Pod Security Standard on every pod and container,
      no service account token anywhere, the three probes on every long-running container, a
      default-deny NetworkPolicy, every resource in an explicit namespace, pre-install hooks
      that use only what exists before them (hooks of a lower weight, or outside objects), and
      the gateway as the only public entry: every Ingress backend is the gateway's Service.
      With --chart (and the values RENDERED was made with), also: no NetworkPolicy lets the
      ingress controller (networkPolicy.ingressController) reach pods other than the gateway's,
      and with the ingress enabled one lets it reach the gateway.
  checkov-verdict CHECKOV_JSON --waivers FILE [--canary-file NAME]
      Judge a checkov JSON report: failures not waived by FILE fail; a waiver must give a reason
      and must match something (stale waivers fail too); with --canary-file, that file's
      resources must fail (else checkov proves nothing). Prints passed/failed/waived counts.

Values files are YAML; --set-json takes {"a": {"b": 1}} objects merged in order.
"""

import argparse
import ipaddress
import json
import re
import sys

import yaml


def fail(message):
    print(f"helm_tool: {message}", file=sys.stderr)
    sys.exit(1)


def deep_merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def load_values(files, set_json):
    values = {}
    for path in files or []:
        with open(path, encoding="utf-8") as f:
            deep_merge(values, yaml.safe_load(f) or {})
    for text in set_json or []:
        deep_merge(values, json.loads(text))
    return values


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


# ---------------------------------------------------------------------------------------------
# template, lint

def cmd_template(args):
    import helm_python

    values = load_values(args.values, args.set_json)
    chart = helm_python.Chart.load(args.chart)
    try:
        rendered = chart.render(
            values,
            name=args.name,
            namespace=args.namespace,
            is_install=not args.upgrade,
            is_upgrade=args.upgrade,
        )
    except helm_python.HelmError as e:
        fail(f"{type(e).__name__}: {e}")
    finally:
        chart.close()
    out = []
    for path in sorted(rendered):
        text = rendered[path]
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append((path, doc))
    stream = "".join(
        f"---\n# Source: {path}\n" + yaml.safe_dump(doc, sort_keys=False) for path, doc in out
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(stream)
    else:
        sys.stdout.write(stream)
    print(f"rendered {len(out)} manifests", file=sys.stderr)


def cmd_lint(args):
    import helm_python

    values = load_values(args.values, args.set_json)
    report = helm_python.lint(
        args.chart, values, strict=args.strict, kube_version=args.kube_version
    )
    names = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    worst = 0
    for m in report.get("messages", []):
        severity = m.get("severity", 0)
        worst = max(worst, severity)
        print(f"[{names.get(severity, severity)}] {m.get('path')}: {m.get('error')}".rstrip())
    limit = 2 if args.strict else 3
    if worst >= limit or (report.get("errors") and not report.get("messages")):
        fail(f"lint failed ({report.get('total_charts_linted')} chart linted)")
    print(f"lint passed ({len(report.get('messages', []))} informational messages)")


# ---------------------------------------------------------------------------------------------
# split: custom resources named explicitly, the rest to kubernetes-validate

KUBERNETES_GROUPS = {
    "", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
}


def cmd_split(args):
    crd_kinds = set(args.crd_kind or [])
    validate, crds = [], []
    for doc in load_docs(args.rendered):
        api = doc.get("apiVersion", "")
        group = api.rsplit("/", 1)[0] if "/" in api else ""
        key = f"{api}/{doc.get('kind')}"
        if key in crd_kinds:
            crds.append(doc)
        elif group in KUBERNETES_GROUPS:
            validate.append(doc)
        else:
            fail(f"{key} ({doc['metadata']['name']}) is neither a Kubernetes kind nor a custom "
                 "resource named with --crd-kind: it would go unvalidated")
    for path, docs in ((args.validate, validate), (args.crds, crds)):
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
    print(f"{len(validate)} manifests to validate, {len(crds)} custom resources excluded by kind "
          f"({', '.join(sorted(crd_kinds)) or 'none'})")


# ---------------------------------------------------------------------------------------------
# policy: the chart's own rules

RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}


def pod_specs(doc):
    """(description, component, pod spec, long_running) of a workload."""
    kind = doc.get("kind")
    name = f"{kind}/{doc['metadata']['name']}"
    spec = doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        template = spec["template"]
        yield name, template["metadata"]["labels"].get("app.kubernetes.io/component"), template["spec"], True
    elif kind == "Job":
        template = spec["template"]
        yield name, template["metadata"]["labels"].get("app.kubernetes.io/component"), template["spec"], False
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
        yield name, template["metadata"]["labels"].get("app.kubernetes.io/component"), template["spec"], False
    elif kind == "Pod":
        yield name, doc["metadata"].get("labels", {}).get("app.kubernetes.io/component"), spec, True


def check_pod(name, spec, long_running, probes_required, problems):
    def bad(text):
        problems.append(f"{name}: {text}")

    psc = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        bad("automountServiceAccountToken must be false on the pod")
    if not spec.get("serviceAccountName") or spec.get("serviceAccountName") == "default":
        bad("runs under the default ServiceAccount")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad(f"{field} is set")
    if psc.get("runAsNonRoot") is not True:
        bad("pod securityContext.runAsNonRoot must be true")
    if psc.get("runAsUser") == 0:
        bad("pod runs as uid 0")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            bad(f"volume {volume['name']} is of a type the restricted standard forbids: {sorted(kinds)}")
    containers = [(c, False) for c in spec.get("initContainers", [])]
    containers += [(c, True) for c in spec.get("containers", [])]
    if not spec.get("containers"):
        bad("has no containers")
    for c, main in containers:
        where = f"container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            bad(f"{where}: privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad(f"{where}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            bad(f"{where}: adds capabilities {caps.get('add')}")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad(f"{where}: readOnlyRootFilesystem must be true")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad(f"{where}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) in (0, None):
            bad(f"{where}: no non-zero runAsUser")
        if (sc.get("seccompProfile") or {}).get("type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            bad(f"{where}: seccompProfile must be RuntimeDefault")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                bad(f"{where}: hostPort {port['hostPort']}")
        resources = c.get("resources") or {}
        for part in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in (resources.get(part) or {}):
                    bad(f"{where}: no {part}.{res}")
        if main and long_running and probes_required:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe not in c:
                    bad(f"{where}: no {probe}")


def hook_of(doc):
    """(phases, weight) of a Helm hook resource, or (set(), None)."""
    annotations = doc.get("metadata", {}).get("annotations") or {}
    phases = {p.strip() for p in annotations.get("helm.sh/hook", "").split(",") if p.strip()}
    return phases, int(annotations.get("helm.sh/hook-weight", "0")) if phases else None


def check_hook_order(docs, problems):
    """A pre-install hook runs before the release's ordinary resources exist: everything of the
    chart it mounts or runs as must itself be a pre-install hook with a lower weight."""
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    for doc in docs:
        phases, weight = hook_of(doc)
        if "pre-install" not in phases:
            continue
        for name, _, spec, _ in pod_specs(doc):
            refs = [("ServiceAccount", spec.get("serviceAccountName"))]
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    refs.append(("Secret", volume["secret"].get("secretName")))
                if "configMap" in volume:
                    refs.append(("ConfigMap", volume["configMap"].get("name")))
                for source in (volume.get("projected") or {}).get("sources", []):
                    for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                        if key in source:
                            refs.append((kind, source[key].get("name")))
            for ref in refs:
                target = rendered.get(ref)
                if target is None:
                    continue  # not the chart's: it must exist before the install (existingSecret)
                t_phases, t_weight = hook_of(target)
                if "pre-install" not in t_phases or t_weight is None or t_weight >= weight:
                    problems.append(f"{name} (pre-install hook, weight {weight}) uses {ref[0]}/{ref[1]}, "
                                    "which is not a pre-install hook of a lower weight: it will not exist yet")


# The gateway, the only public entry: the Ingress and the ingress controller reach nothing else.
COMPONENT = "app.kubernetes.io/component"


def check_ingress_backends(docs, problems):
    """Every backend of every Ingress must be the gateway's Service, on one of its ports."""
    gateways = {
        d["metadata"]["name"]: d for d in docs
        if d.get("kind") == "Service" and (d.get("spec", {}).get("selector") or {}).get(COMPONENT) == "gateway"
    }
    for doc in docs:
        if doc.get("kind") != "Ingress":
            continue
        ident = f"Ingress/{doc['metadata']['name']}"
        spec = doc.get("spec", {})
        backends = [("the default backend", spec["defaultBackend"])] if spec.get("defaultBackend") else []
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backends.append((f"{rule.get('host', '*')}{path.get('path', '')}", path.get("backend") or {}))
        for where, backend in backends:
            service = backend.get("service") or {}
            target = gateways.get(service.get("name"))
            if target is None:
                what = f"Service/{service['name']}" if service.get("name") else f"a non-Service backend {backend}"
                problems.append(f"{ident}: {where} goes to {what}; only the gateway's Service may be public")
                continue
            port = service.get("port") or {}
            key, field = ("name", "name") if "name" in port else ("number", "port")
            if not any(port.get(key) == p.get(field) for p in target["spec"].get("ports") or []):
                problems.append(f"{ident}: {where} names port {port} that Service/{service['name']} does not have")


def labels_compatible(a, b):
    """Whether two label selectors can select a common object, as far as matchLabels tell
    (conflicting values of one key); None or {} selects everything. matchExpressions are not
    evaluated: they are taken as compatible, which errs on the side of a reported problem."""
    a = (a or {}).get("matchLabels") or {}
    b = (b or {}).get("matchLabels") or {}
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def admits(peer, controller, namespace):
    """Whether a NetworkPolicy peer may admit the ingress controller, given as the chart's peer
    spec ({cidrs, namespaceSelector, podSelector}); `namespace` is the policy's own."""
    if "ipBlock" in peer:
        net = ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False)
        return any(net.overlaps(ipaddress.ip_network(c, strict=False)) for c in controller.get("cidrs") or [])
    ctl_ns, ctl_pods = controller.get("namespaceSelector"), controller.get("podSelector")
    if not ctl_ns and not ctl_pods:
        return False  # the controller is given by addresses only
    # A spec without namespaceSelector selects pods of the policy's namespace.
    own = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    peer_ns = peer["namespaceSelector"] if "namespaceSelector" in peer else own
    return labels_compatible(peer_ns, ctl_ns or own) and labels_compatible(peer.get("podSelector"), ctl_pods)


def check_ingress_controller(policies, controller, ingress_enabled, problems):
    """The ingress controller may reach the gateway's pods and nothing else."""
    reaches_gateway = False
    for p in policies:
        selected = (p["spec"].get("podSelector") or {}).get("matchLabels") or {}
        for rule in p["spec"].get("ingress") or []:
            if not any(admits(peer, controller, p["metadata"].get("namespace")) for peer in rule.get("from") or []):
                continue
            if selected.get(COMPONENT) == "gateway":
                reaches_gateway = True
            else:
                problems.append(f"NetworkPolicy/{p['metadata']['name']}: lets the ingress controller reach "
                                f"{selected.get(COMPONENT) or 'pods other than the gateway'}; only the gateway "
                                "may be public")
    has_peers = any(controller.get(k) for k in ("cidrs", "namespaceSelector", "podSelector"))
    if ingress_enabled and has_peers and policies and not reaches_gateway:
        problems.append("no NetworkPolicy lets the ingress controller reach the gateway")


def cmd_policy(args):
    docs = load_docs(args.rendered)
    exempt = set(args.exempt_probes or [])
    problems = []
    pods = 0
    for doc in docs:
        meta = doc.get("metadata", {})
        ident = f"{doc.get('kind')}/{meta.get('name')}"
        if not meta.get("namespace"):
            problems.append(f"{ident}: no metadata.namespace")
        if doc.get("kind") == "ServiceAccount" and doc.get("automountServiceAccountToken") is not False:
            problems.append(f"{ident}: automountServiceAccountToken must be false")
        for name, component, spec, long_running in pod_specs(doc):
            pods += 1
            check_pod(name, spec, long_running, component not in exempt, problems)
        if doc.get("kind") == "ServiceMonitor":
            spec = doc.get("spec", {})
            if not spec.get("selector") or not spec.get("endpoints"):
                problems.append(f"{ident}: needs a selector and endpoints")
    check_hook_order(docs, problems)
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    default_deny = [
        p for p in policies
        if set(p["spec"].get("policyTypes", [])) >= {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
        and "app.kubernetes.io/instance" in (p["spec"]["podSelector"].get("matchLabels") or {})
        and "app.kubernetes.io/component" not in (p["spec"]["podSelector"].get("matchLabels") or {})
    ]
    if args.expect_network_policies and not default_deny:
        problems.append("no default-deny NetworkPolicy (ingress and egress) over the release's pods")
    for p in policies:
        for direction, peers in (("ingress", "from"), ("egress", "to")):
            for rule in p["spec"].get(direction) or []:
                if not rule.get(peers):
                    problems.append(f"NetworkPolicy/{p['metadata']['name']}: an {direction} rule "
                                    f"without '{peers}' allows every peer")
    check_ingress_backends(docs, problems)
    public = "Ingress backends only the gateway"
    if args.chart:
        values = load_values([f"{args.chart}/values.yaml"] + (args.values or []), args.set_json)
        controller = values.get("networkPolicy", {}).get("ingressController") or {}
        check_ingress_controller(policies, controller, values.get("ingress", {}).get("enabled"), problems)
        public += ", the ingress controller reaches only the gateway"
    for problem in problems:
        print(f"  {problem}")
    if problems:
        fail(f"{len(problems)} policy problems in {args.rendered}")
    print(f"policy passed: {pods} pod specs (restricted PSS, no token, resources, hook order, probes"
          f"{' except ' + ', '.join(sorted(exempt)) if exempt else ''}), "
          f"{len(policies)} NetworkPolicies ({len(default_deny)} default deny), {public}, {len(docs)} manifests")


# ---------------------------------------------------------------------------------------------
# checkov-verdict

def load_waivers(path):
    """Lines `CHECK_ID  RESOURCE_REGEX  reason...`; '#' starts a comment."""
    waivers = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) < 3 or len(parts[2]) < 10:
                fail(f"{path}:{number}: a waiver is CHECK_ID RESOURCE_REGEX REASON (a real reason)")
            waivers.append({"check": parts[0], "resource": re.compile(parts[1]), "reason": parts[2],
                            "where": f"{path}:{number}", "used": 0})
    return waivers


def cmd_checkov_verdict(args):
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
    reports = report if isinstance(report, list) else [report]
    waivers = load_waivers(args.waivers)
    passed = failed = waived = canary = 0
    unwaived = []
    for r in reports:
        if "results" not in r:
            continue
        passed += len(r["results"].get("passed_checks", []))
        for finding in r["results"].get("failed_checks", []):
            if args.canary_file and finding.get("file_path", "").endswith(args.canary_file):
                canary += 1
                continue
            match = next((w for w in waivers if w["check"] == finding["check_id"]
                          and w["resource"].fullmatch(finding["resource"])), None)
            if match:
                match["used"] += 1
                waived += 1
            else:
                failed += 1
                unwaived.append(f"  {finding['check_id']} {finding['check_name']}: "
                                f"{finding['resource']} ({finding.get('file_path')})")
    if not any("results" in r for r in reports):
        fail("checkov reported no results: it parsed none of the rendered files")
    for line in unwaived:
        print(line)
    stale = [w for w in waivers if not w["used"]]
    for w in stale:
        print(f"  stale waiver {w['where']}: {w['check']} {w['resource'].pattern} matches nothing")
    print(f"checkov: {passed} passed, {failed} failed, {waived} waived "
          f"({len(waivers)} waivers), canary findings {canary}")
    if args.canary_file and canary == 0:
        fail("checkov found nothing wrong in the canary manifest: it cannot be trusted")
    if failed or stale:
        fail("checkov findings not waived (or stale waivers): see above")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)

    def chart_args(sp):
        sp.add_argument("chart")
        sp.add_argument("-f", "--values", action="append")
        sp.add_argument("--set-json", action="append")

    t = sub.add_parser("template")
    chart_args(t)
    t.add_argument("--name", default="aurumai")
    t.add_argument("--namespace", default="aurumai")
    t.add_argument("--upgrade", action="store_true")
    t.add_argument("--out")
    t.set_defaults(func=cmd_template)

    lt = sub.add_parser("lint")
    chart_args(lt)
    lt.add_argument("--strict", action="store_true")
    lt.add_argument("--kube-version")
    lt.set_defaults(func=cmd_lint)

    sp = sub.add_parser("split")
    sp.add_argument("rendered")
    sp.add_argument("--validate", required=True)
    sp.add_argument("--crds", required=True)
    sp.add_argument("--crd-kind", action="append")
    sp.set_defaults(func=cmd_split)

    po = sub.add_parser("policy")
    po.add_argument("rendered")
    po.add_argument("--exempt-probes", action="append")
    po.add_argument("--expect-network-policies", action="store_true")
    po.add_argument("--chart", help="the chart RENDERED was made from; with its values, the ingress controller rule")
    po.add_argument("-f", "--values", action="append")
    po.add_argument("--set-json", action="append")
    po.set_defaults(func=cmd_policy)

    cv = sub.add_parser("checkov-verdict")
    cv.add_argument("report")
    cv.add_argument("--waivers", required=True)
    cv.add_argument("--canary-file")
    cv.set_defaults(func=cmd_checkov_verdict)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
