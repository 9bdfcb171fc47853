#!/usr/bin/env python3
"""Checks the Grafana dashboards and the Prometheus alert rules against the code.

    deploy/scripts/observability-check.py [--root DIR] [--self-test] [--list-metrics]

Run it through deploy/scripts/observability-check.sh, which provides PyYAML (needed to read
the rules) and promql-parser (PromQL syntax; optional: without it, metric and label names are
still checked with a built-in tokenizer). Everything else is the standard library.

What fails the check:
  dashboards (deploy/grafana/*.json): invalid JSON; no uid or title; a uid used twice; a
    repeated panel id; a panel (other than a row or text) without targets, or a target without
    an expr; a panel or target whose data source is not the ${DS_PROMETHEUS} variable; no
    DS_PROMETHEUS data-source variable.
  rules (deploy/prometheus/alerts.yaml): not YAML; not `groups:` with named groups of rules;
    an alert without expr, `for`, a severity label (warning or critical), a summary, a
    description or a runbook_url; a runbook_url whose anchor is not a heading (or <a id>) of
    docs/alerts.md; a heading of docs/alerts.md named like an alert that does not exist; no
    certificate alert at 14 days (warning) and 3 days (critical); a link of docs/alerts.md to
    a heading of its own that does not exist.
  every query (panels, template variables, rules): a PromQL syntax error (with promql-parser);
    a metric name no Rust source under crates/ or services/ defines ("aurum_..."/"http_..."
    string literals; _bucket/_sum/_count of a histogram count as the histogram; `up` is
    Prometheus' own); a label matcher, or a `by`/`without` label, that none of the
    expression's metrics carries (labels read from the constructor's `&["..."]` list, plus the
    scrape labels job, instance, ...).

A canary (an alert on a metric that does not exist, a dashboard with a repeated panel id and a
panel without a query, an alert without a runbook) runs first: when it is not rejected, the
check itself is broken and exits 2. Exit 1 when there are problems, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import yaml  # PyYAML, installed by observability-check.sh
except ImportError:  # pragma: no cover - reported in main()
    yaml = None

try:
    import promql_parser  # promql-parser, installed by observability-check.sh
except ImportError:  # pragma: no cover - the tokenizer covers names and labels
    promql_parser = None

# Labels Prometheus adds to every scraped series (target labels), whatever the metric.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint",
                 "node", "__name__"}
# Series Prometheus makes itself.
BUILTIN_METRICS = {"up": set(), "scrape_duration_seconds": set(), "scrape_samples_scraped": set()}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SEVERITIES = {"warning", "critical"}
DS_UID = "${DS_PROMETHEUS}"
# Metric-name string literals in the Rust sources.
METRIC_LITERAL = re.compile(r'"((?:aurum|http)_[a-z0-9_]*[a-z0-9])"')
# Calls that construct a metric with labels (the next `&[...]` lists them).
VEC_CONSTRUCTOR = re.compile(r"\b(?:IntCounterVec|CounterVec|IntGaugeVec|GaugeVec|HistogramVec)\b")
ANY_CONSTRUCTOR = re.compile(
    r"\b(?:IntCounter|Counter|IntGauge|Gauge|Histogram)(?:Vec)?\b|\bOpts::new\b|\bHistogramOpts::new\b"
    r"|\bregister_[a-z_]+!")
DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")


# ---------------------------------------------------------------------------------------------
# The metrics the code defines


@dataclass
class Metric:
    name: str
    histogram: bool = False
    labels: set[str] | None = field(default_factory=set)  # None: could not be read
    where: list[str] = field(default_factory=list)


def _rust_files(root: Path):
    for top in ("crates", "services"):
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.rs")):
            parts = set(path.relative_to(root).parts)
            # Tests and benches may name metrics that production code does not define.
            if parts & {"tests", "benches", "target"}:
                continue
            yield path


def exported_metrics(root: Path) -> dict[str, Metric]:
    """Metric names (with histogram flag and labels) defined by the Rust sources."""
    metrics: dict[str, Metric] = {}
    for path in _rust_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in METRIC_LITERAL.finditer(text):
            name = m.group(1)
            line_start = text.rfind("\n", 0, m.start()) + 1
            line_no = text.count("\n", 0, m.start()) + 1
            # The call this literal is an argument of: from the end of the previous statement
            # or field (`)?`, `;`, `{`) up to the literal.
            window = text[max(0, m.start() - 400):m.start()]
            cut = max(window.rfind(")?"), window.rfind(";"), window.rfind("{"))
            segment = window[cut + 1:] if cut >= 0 else window
            constructors = [c.group(0) for c in ANY_CONSTRUCTOR.finditer(segment)]
            # `const NAME: &str = "aurum_...";` counts when NAME is passed to a constructor.
            const = re.search(r"const\s+([A-Z_][A-Z0-9_]*)\s*:\s*&str\s*=\s*$",
                              text[line_start:m.start()])
            is_const = bool(const) and bool(re.search(
                r"(?:" + ANY_CONSTRUCTOR.pattern + r")\s*\(\s*(?:[A-Za-z_:]+::)?"
                + const.group(1) + r"\b", text))
            if not constructors and not is_const:
                # A cookie, a span or a log field named like a metric: not a metric.
                continue
            # The call ends at the first `)?`, `).unwrap()`, `).expect(` or `;` after the name.
            rest = text[m.end():m.end() + 600]
            end = len(rest)
            for pattern in (r"\)\s*\?", r"\)\s*\.\s*(?:unwrap|expect)\b", r";"):
                found = re.search(pattern, rest)
                if found:
                    end = min(end, found.start())
            call = rest[:end]
            next_name = METRIC_LITERAL.search(call)
            if next_name:
                call = call[:next_name.start()]
            histogram = any("Histogram" in c or "histogram" in c for c in constructors)
            is_vec = any(c.endswith("Vec") or c.endswith("_vec!") for c in constructors)
            label_list = re.search(r"&\[\s*((?:\"[a-z_][a-z0-9_]*\"\s*,?\s*)*)\]", call)
            if label_list:
                labels: set[str] | None = set(re.findall(r'"([a-z_][a-z0-9_]*)"', label_list.group(1)))
            elif is_vec or is_const:
                labels = None  # labels given elsewhere (a constant, a variable): not checked
            else:
                labels = set()
            entry = metrics.setdefault(name, Metric(name))
            entry.histogram = entry.histogram or histogram
            if entry.labels is not None:
                entry.labels = None if labels is None else entry.labels | labels
            entry.where.append(f"{path.relative_to(root)}:{line_no}")
    return metrics


def resolve(name: str, metrics: dict[str, Metric]) -> tuple[str | None, set[str] | None]:
    """The defined metric a series name refers to, and the labels the series can carry."""
    if name in BUILTIN_METRICS:
        return name, set(BUILTIN_METRICS[name])
    if name in metrics:
        m = metrics[name]
        return name, None if m.labels is None else set(m.labels)
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            base = metrics.get(name[: -len(suffix)])
            if base is not None and base.histogram:
                labels = None if base.labels is None else set(base.labels)
                if labels is not None and suffix == "_bucket":
                    labels.add("le")
                return base.name, labels
    return None, None


# ---------------------------------------------------------------------------------------------
# PromQL: names and labels an expression uses


@dataclass
class Selector:
    name: str | None
    matchers: list[str]  # label names


@dataclass
class Usage:
    selectors: list[Selector]
    grouping: list[str]  # by/without labels of aggregations
    relabels: bool  # label_replace/label_join: grouping labels are not checked


GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "atan2", "inf", "nan", "start", "end"}
GROUPING_KEYWORDS = {"by", "without"}
MATCHING_KEYWORDS = {"on", "ignoring", "group_left", "group_right"}
# Aggregation operators: `sum by (job) (...)` puts a keyword between the name and its `(`.
AGGREGATIONS = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group", "limitk", "limit_ratio"}


def substitute_grafana(expr: str) -> str:
    """Replaces Grafana's variables by values PromQL accepts."""
    def repl(m: re.Match) -> str:
        text = m.group(0)
        if text in ("$__rate_interval", "$__interval", "$__range", "${__rate_interval}",
                    "${__interval}", "${__range}"):
            return "5m"
        if text in ("$__range_s", "$__interval_ms"):
            return "300"
        return "x"
    return GRAFANA_VARIABLE.sub(repl, expr)


class PromQLError(ValueError):
    pass


def tokenize_usage(expr: str) -> Usage:
    """Metric names, matcher labels and grouping labels of a PromQL expression, by tokens.

    Not a parser: it does not validate syntax, but it finds every vector selector (an
    identifier that is neither a keyword nor followed by `(`) and every label name inside `{}`
    and after by/without.
    """
    i, n = 0, len(expr)
    selectors: list[Selector] = []
    grouping: list[str] = []
    relabels = False

    def skip_ws(j: int) -> int:
        while j < n:
            if expr[j].isspace():
                j += 1
            elif expr[j] == "#":
                while j < n and expr[j] != "\n":
                    j += 1
            else:
                break
        return j

    def read_string(j: int) -> int:
        quote = expr[j]
        j += 1
        while j < n and expr[j] != quote:
            j += 2 if expr[j] == "\\" and quote != "`" else 1
        if j >= n:
            raise PromQLError("unterminated string")
        return j + 1

    def read_matchers(j: int) -> tuple[list[str], str | None, int]:
        """Parses `{...}` from expr[j] == '{'; returns label names, a __name__ value, end."""
        labels, name = [], None
        j += 1
        while True:
            j = skip_ws(j)
            if j >= n:
                raise PromQLError("unclosed {")
            if expr[j] == "}":
                return labels, name, j + 1
            if expr[j] == ",":
                j += 1
                continue
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(expr, j)
            if not m:
                raise PromQLError(f"bad label matcher at {expr[j:j + 20]!r}")
            label = m.group(0)
            j = skip_ws(m.end())
            op = re.compile(r"=~|!~|!=|=").match(expr, j)
            if not op:
                raise PromQLError(f"no matcher operator after label {label!r}")
            j = skip_ws(op.end())
            if j >= n or expr[j] not in "\"'`":
                raise PromQLError(f"label {label!r} is not matched against a string")
            end = read_string(j)
            if label == "__name__" and op.group(0) == "=":
                name = expr[j + 1:end - 1]
            else:
                labels.append(label)
            j = end

    while True:
        i = skip_ws(i)
        if i >= n:
            break
        c = expr[i]
        if c in "\"'`":
            i = read_string(i)
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = re.compile(r"[0-9.][0-9A-Za-z_.]*").match(expr, i)
            i = m.end()
        elif c == "{":
            labels, name, i = read_matchers(i)
            selectors.append(Selector(name, labels))
        elif c == "[":
            close = expr.find("]", i)
            if close < 0:
                raise PromQLError("unclosed [")
            i = close + 1
        elif c.isalpha() or c in "_:":
            m = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*").match(expr, i)
            word = m.group(0)
            i = skip_ws(m.end())
            lower = word.lower()
            if lower in GROUPING_KEYWORDS | MATCHING_KEYWORDS:
                if i < n and expr[i] == "(":
                    close = expr.find(")", i)
                    if close < 0:
                        raise PromQLError(f"unclosed {word} (")
                    names = [x.strip() for x in expr[i + 1:close].split(",") if x.strip()]
                    if lower in GROUPING_KEYWORDS:
                        grouping.extend(names)
                    i = close + 1
            elif lower in KEYWORDS or lower in AGGREGATIONS:
                pass
            elif i < n and expr[i] == "(":
                if word in ("label_replace", "label_join"):
                    relabels = True
            else:
                labels: list[str] = []
                if i < n and expr[i] == "{":
                    labels, _, i = read_matchers(i)
                selectors.append(Selector(word, labels))
        else:
            i += 1
    return Usage(selectors, grouping, relabels)


def parse_usage(expr: str) -> Usage:
    """Like tokenize_usage, from promql-parser's syntax tree (and a syntax check)."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as e:
        raise PromQLError(str(e)) from None
    selectors: list[Selector] = []
    grouping: list[str] = []
    relabels = [False]

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name, labels = node.name, []
            for m in node.matchers.matchers:
                if m.name == "__name__" and str(m.op).endswith("Equal") and "Not" not in str(m.op):
                    name = m.value
                else:
                    labels.append(m.name)
            selectors.append(Selector(name, labels))
        elif isinstance(node, promql_parser.AggregateExpr):
            if node.modifier is not None:
                grouping.extend(node.modifier.labels)
        elif isinstance(node, promql_parser.Call):
            if node.func.name in ("label_replace", "label_join"):
                relabels[0] = True
        return True

    promql_parser.walk(tree, visit)
    return Usage(selectors, grouping, relabels[0])


def usage_of(expr: str) -> Usage:
    return parse_usage(expr) if promql_parser is not None else tokenize_usage(expr)


def check_expr(expr: str, where: str, metrics: dict[str, Metric], problems: list[str]) -> set[str]:
    """Checks one PromQL expression; returns the metric names it uses."""
    text = substitute_grafana(expr)
    try:
        usage = usage_of(text)
    except PromQLError as e:
        problems.append(f"{where}: PromQL does not parse: {e}: {expr}")
        return set()
    if promql_parser is not None:
        # The tokenizer is the fallback without the parser: it must agree with it.
        try:
            alt = tokenize_usage(text)
        except PromQLError as e:
            alt = None
            problems.append(f"{where}: the built-in tokenizer fails on a valid expression ({e})")
        if alt is not None and sorted(s.name or "" for s in alt.selectors) != sorted(
                s.name or "" for s in usage.selectors):
            problems.append(f"{where}: the built-in tokenizer disagrees with promql-parser on "
                            f"the metric names: fix the tokenizer")
    used: set[str] = set()
    known_labels: set[str] = set(TARGET_LABELS)
    labels_complete = True
    for sel in usage.selectors:
        if sel.name is None:
            problems.append(f"{where}: a selector without a metric name: {expr}")
            continue
        used.add(sel.name)
        base, labels = resolve(sel.name, metrics)
        if base is None:
            problems.append(f"{where}: metric {sel.name} is not defined in the Rust sources "
                            f"(crates/, services/)")
            labels_complete = False
            continue
        if labels is None:
            labels_complete = False
            continue
        known_labels |= labels
        for label in sel.matchers:
            if label not in labels and label not in TARGET_LABELS:
                problems.append(f"{where}: {sel.name} has no label {label!r} "
                                f"(it has: {', '.join(sorted(labels)) or 'none'})")
    if labels_complete and not usage.relabels:
        for label in usage.grouping:
            if label not in known_labels:
                problems.append(f"{where}: grouping by {label!r}, a label none of "
                                f"{', '.join(sorted(used))} carries")
    return used


# ---------------------------------------------------------------------------------------------
# Dashboards


def _panels(panels):
    for p in panels or []:
        yield p
        yield from _panels(p.get("panels"))


def check_dashboard(doc, where: str, metrics, problems: list[str], uids: dict[str, str]) -> set[str]:
    used: set[str] = set()
    if not isinstance(doc, dict):
        problems.append(f"{where}: not a dashboard object")
        return used
    uid = doc.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        problems.append(f"{where}: uid must be a stable string of at most 40 letters, digits, - or _")
    elif uid in uids:
        problems.append(f"{where}: uid {uid} is also used by {uids[uid]}")
    else:
        uids[uid] = where
    if not doc.get("title"):
        problems.append(f"{where}: no title")
    variables = doc.get("templating", {}).get("list", [])
    if not any(v.get("type") == "datasource" and v.get("name") == "DS_PROMETHEUS"
               and v.get("query") == "prometheus" for v in variables):
        problems.append(f"{where}: no data-source variable DS_PROMETHEUS (type datasource, "
                        f"query prometheus)")
    for v in variables:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
        if m:
            used |= check_expr(m.group(1), f"{where}: variable {v.get('name')}", metrics, problems)
            # The label asked for must be one the metric carries.
            usage = None
            try:
                usage = usage_of(substitute_grafana(m.group(1)))
            except PromQLError:
                pass
            if usage and usage.selectors and usage.selectors[0].name:
                _, labels = resolve(usage.selectors[0].name, metrics)
                if labels is not None and m.group(2) not in labels | TARGET_LABELS:
                    problems.append(f"{where}: variable {v.get('name')}: "
                                    f"{usage.selectors[0].name} has no label {m.group(2)!r}")
        elif q:
            used |= check_expr(q, f"{where}: variable {v.get('name')}", metrics, problems)
    ids: dict[int, str] = {}
    for p in _panels(doc.get("panels")):
        title = p.get("title", "?")
        pid = p.get("id")
        label = f"{where}: panel {pid} {title!r}"
        if not isinstance(pid, int):
            problems.append(f"{label}: no integer id")
        elif pid in ids:
            problems.append(f"{label}: id {pid} repeated (also {ids[pid]!r})")
        else:
            ids[pid] = title
        if "gridPos" not in p:
            problems.append(f"{label}: no gridPos")
        if p.get("type") in ("row", "text"):
            continue
        ds = p.get("datasource")
        if not isinstance(ds, dict) or ds.get("uid") != DS_UID:
            problems.append(f"{label}: datasource must be {{\"type\": \"prometheus\", "
                            f"\"uid\": \"{DS_UID}\"}}")
        targets = p.get("targets")
        if not targets:
            problems.append(f"{label}: no targets")
            continue
        ref_ids = set()
        for t in targets:
            ref = t.get("refId", "?")
            if ref in ref_ids:
                problems.append(f"{label}: refId {ref} repeated")
            ref_ids.add(ref)
            tds = t.get("datasource")
            if tds is not None and (not isinstance(tds, dict) or tds.get("uid") != DS_UID):
                problems.append(f"{label} {ref}: target datasource must be {DS_UID}")
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{label} {ref}: no expr")
                continue
            used |= check_expr(expr, f"{label} {ref}", metrics, problems)
    return used


# ---------------------------------------------------------------------------------------------
# Rules and runbooks


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def doc_anchors(path: Path) -> tuple[set[str], list[str]]:
    """Anchors of a Markdown file, and its headings of level 3 (the alert sections)."""
    anchors: set[str] = set()
    sections: list[str] = []
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = github_anchor(m.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
            if len(m.group(1)) == 3:
                sections.append(m.group(2).strip())
        for a in re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line):
            anchors.add(a)
    return anchors, sections


def _thresholds(expr: str) -> set[float]:
    """Values of the numeric products in an expression (14 * 86400 -> 1209600)."""
    values = set()
    for m in re.finditer(r"\d+(?:\.\d+)?(?:\s*\*\s*\d+(?:\.\d+)?)*", expr):
        value = 1.0
        for factor in re.split(r"\s*\*\s*", m.group(0)):
            value *= float(factor)
        values.add(value)
    return values


def check_rules(doc, where: str, metrics, problems: list[str], anchors: set[str],
                sections: list[str] | None) -> set[str]:
    used: set[str] = set()
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list) or not doc["groups"]:
        problems.append(f"{where}: expected a mapping with a non-empty `groups:` list")
        return used
    group_names: set[str] = set()
    alerts: dict[tuple[str, str], dict] = {}
    for gi, group in enumerate(doc["groups"]):
        if not isinstance(group, dict) or not group.get("name"):
            problems.append(f"{where}: group {gi} has no name")
            continue
        gname = group["name"]
        if gname in group_names:
            problems.append(f"{where}: group {gname} repeated")
        group_names.add(gname)
        rules = group.get("rules")
        if not isinstance(rules, list) or not rules:
            problems.append(f"{where}: group {gname} has no rules")
            continue
        for ri, rule in enumerate(rules):
            if not isinstance(rule, dict):
                problems.append(f"{where}: {gname} rule {ri} is not a mapping")
                continue
            name = rule.get("alert") or rule.get("record")
            label = f"{where}: {gname}/{name or ri}"
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{label}: no expr")
                expr = None
            if expr:
                used |= check_expr(expr, label, metrics, problems)
            if rule.get("record"):
                continue
            if not rule.get("alert"):
                problems.append(f"{label}: neither alert nor record")
                continue
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problems.append(f"{label}: alert name must be a Prometheus metric-like name")
            duration = rule.get("for")
            if duration is None:
                problems.append(f"{label}: no `for:` (every alert waits before firing)")
            elif not DURATION.match(str(duration)):
                problems.append(f"{label}: `for: {duration}` is not a Prometheus duration")
            labels = rule.get("labels") or {}
            severity = labels.get("severity")
            if severity not in SEVERITIES:
                problems.append(f"{label}: severity label must be one of "
                                f"{', '.join(sorted(SEVERITIES))} (is {severity!r})")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description"):
                if not str(annotations.get(key) or "").strip():
                    problems.append(f"{label}: no {key} annotation")
            runbook = str(annotations.get("runbook_url") or "")
            m = re.fullmatch(r"(?:.*/)?docs/alerts\.md#([A-Za-z0-9_-]+)", runbook)
            if not runbook:
                problems.append(f"{label}: no runbook_url annotation")
            elif not m:
                problems.append(f"{label}: runbook_url {runbook!r} must point at "
                                f"docs/alerts.md#<anchor>")
            elif m.group(1) not in anchors:
                problems.append(f"{label}: runbook anchor #{m.group(1)} is not a heading of "
                                f"docs/alerts.md")
            if (name, str(severity)) in alerts:
                problems.append(f"{label}: alert {name} with severity {severity} repeated")
            alerts[(name, str(severity))] = {"expr": expr or "", "severity": severity}
    names = {n for n, _ in alerts}
    if sections is not None:
        for s in sections:
            if re.fullmatch(r"Aurum[A-Za-z0-9]+", s) and s not in names:
                problems.append(f"docs/alerts.md: section {s} describes an alert that "
                                f"{where} does not define")
    cert = "aurum_tls_certificate_expiry_timestamp_seconds"
    for days, severity in ((14, "warning"), (3, "critical")):
        if not any(cert in a["expr"] and a["severity"] == severity
                   and float(days * 86400) in _thresholds(a["expr"]) for a in alerts.values()):
            problems.append(f"{where}: no {severity} alert on {cert} at {days} days "
                            f"({days} * 86400 seconds)")
    return used


# ---------------------------------------------------------------------------------------------
# The canary


CANARY_RULES = """
groups:
  - name: canary
    rules:
      - alert: CanaryUnknownMetric
        expr: rate(aurum_canary_metric_that_does_not_exist_total[5m]) > 0
        for: 5m
        labels: {severity: warning}
        annotations:
          summary: s
          description: d
          runbook_url: docs/alerts.md#canaryunknownmetric
      - alert: CanaryNoRunbook
        expr: up == 0
        labels: {severity: page}
        annotations: {summary: s}
      - alert: CanaryWrongLabel
        expr: sum by (kind) (rate(http_requests_total{verb="GET"}[5m])) > 0
        for: 1m
        labels: {severity: critical}
        annotations: {summary: s, description: d, runbook_url: docs/alerts.md#missing-anchor}
"""

CANARY_DASHBOARD = {
    "uid": "canary",
    "title": "canary",
    "templating": {"list": []},
    "panels": [
        {"id": 1, "type": "timeseries", "title": "a", "gridPos": {}, "datasource": {"uid": DS_UID},
         "targets": [{"refId": "A", "expr": "sum(rate(http_requests_total[$__rate_interval]))"}]},
        {"id": 1, "type": "timeseries", "title": "b", "gridPos": {}, "datasource": {"uid": DS_UID},
         "targets": [{"refId": "A", "expr": ""}]},
        {"id": 3, "type": "stat", "title": "c", "gridPos": {}, "datasource": {"uid": DS_UID},
         "targets": []},
    ],
}


def self_test(metrics: dict[str, Metric]) -> list[str]:
    """Runs the checks on the canary; returns what they failed to catch."""
    missed = []
    problems: list[str] = []
    if yaml is not None:
        check_rules(yaml.safe_load(CANARY_RULES), "canary.yaml", metrics, problems,
                    {"canaryunknownmetric"}, None)
        expected = [
            "metric aurum_canary_metric_that_does_not_exist_total is not defined",
            "CanaryNoRunbook: no `for:`",
            "CanaryNoRunbook: severity label must be",
            "CanaryNoRunbook: no description",
            "CanaryNoRunbook: no runbook_url",
            "http_requests_total has no label 'verb'",
            "grouping by 'kind'",
            "runbook anchor #missing-anchor",
            "no warning alert on aurum_tls_certificate_expiry_timestamp_seconds at 14 days",
        ]
        for e in expected:
            if not any(e in p for p in problems):
                missed.append(f"rules canary: expected a problem containing {e!r}")
    problems = []
    check_dashboard(CANARY_DASHBOARD, "canary.json", metrics, problems, {})
    for e in ("id 1 repeated", "'b' A: no expr", "'c': no targets", "no data-source variable"):
        if not any(e in p for p in problems):
            missed.append(f"dashboard canary: expected a problem containing {e!r}")
    # The tokenizer (the fallback without promql-parser) on its own.
    problems = []
    usage = tokenize_usage('sum by (job) (rate(aurum_canary_x_total{a="1"}[5m])) / on(job) '
                           'group_left {__name__="up", job=~"a|b"}')
    names = sorted(s.name or "" for s in usage.selectors)
    if names != ["aurum_canary_x_total", "up"] or usage.grouping != ["job"]:
        missed.append(f"tokenizer canary: read {names} and {usage.grouping}")
    return missed


# ---------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path,
                        default=Path(__file__).resolve().parent.parent.parent,
                        help="repository root (default: this script's checkout)")
    parser.add_argument("--self-test", action="store_true", help="run only the canary")
    parser.add_argument("--list-metrics", action="store_true",
                        help="print the metrics found in the Rust sources and exit")
    args = parser.parse_args(argv)
    root: Path = args.root

    metrics = exported_metrics(root)
    if args.list_metrics:
        for name in sorted(metrics):
            m = metrics[name]
            labels = "?" if m.labels is None else ",".join(sorted(m.labels))
            print(f"{name}{' (histogram)' if m.histogram else ''} {{{labels}}} {m.where[0]}")
        return 0
    if yaml is None:
        print("error: PyYAML is not installed: run deploy/scripts/observability-check.sh, which "
              "installs it into target/observability-tools", file=sys.stderr)
        return 2
    if not metrics:
        print(f"error: no metric definitions found under {root}/crates or {root}/services",
              file=sys.stderr)
        return 2

    missed = self_test(metrics)
    if missed:
        for m in missed:
            print(f"self-test: {m}", file=sys.stderr)
        print("error: the canary was not rejected: this check cannot be trusted", file=sys.stderr)
        return 2
    print("self-test passed: the canary rule, dashboard and tokenizer input were rejected")
    if args.self_test:
        return 0

    problems: list[str] = []
    used: set[str] = set()
    uids: dict[str, str] = {}
    dashboards = sorted((root / "deploy" / "grafana").glob("*.json"))
    if not dashboards:
        problems.append("deploy/grafana: no dashboards")
    panel_count = 0
    for path in dashboards:
        rel = str(path.relative_to(root))
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            problems.append(f"{rel}: invalid JSON: {e}")
            continue
        used |= check_dashboard(doc, rel, metrics, problems, uids)
        panel_count += sum(1 for p in _panels(doc.get("panels")) if p.get("type") != "row")

    rules_path = root / "deploy" / "prometheus" / "alerts.yaml"
    docs_path = root / "docs" / "alerts.md"
    anchors, sections = (doc_anchors(docs_path) if docs_path.is_file() else (set(), []))
    if not docs_path.is_file():
        problems.append("docs/alerts.md is missing")
    else:
        # Its own links between sections (the runbook's table of contents, cross-references).
        for anchor in re.findall(r"\]\(#([^)\s]+)\)", docs_path.read_text(encoding="utf-8")):
            if anchor not in anchors:
                problems.append(f"docs/alerts.md: link to #{anchor}, which is not a heading")
    alert_count = 0
    if not rules_path.is_file():
        problems.append("deploy/prometheus/alerts.yaml is missing")
    else:
        try:
            rules = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            problems.append(f"deploy/prometheus/alerts.yaml: invalid YAML: {e}")
            rules = None
        if rules is not None:
            used |= check_rules(rules, "deploy/prometheus/alerts.yaml", metrics, problems,
                                anchors, sections)
            alert_count = sum(1 for g in rules.get("groups", []) if isinstance(g, dict)
                              for r in g.get("rules") or [] if isinstance(r, dict) and r.get("alert"))

    missing = sorted({n for n in used if resolve(n, metrics)[0] is None})
    syntax = "promql-parser" if promql_parser is not None else "the built-in tokenizer (no syntax check)"
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        if missing:
            print(f"\nmetrics used but not defined in the Rust sources: {', '.join(missing)}",
                  file=sys.stderr)
        print(f"\nobservability check FAILED: {len(problems)} problem(s) in {len(dashboards)} "
              f"dashboards and {alert_count} alerts (PromQL read with {syntax})", file=sys.stderr)
        return 1
    print(f"observability check passed: {len(dashboards)} dashboards ({panel_count} panels), "
          f"{alert_count} alerts, {len(used)} metrics all defined in the Rust sources "
          f"(PromQL read with {syntax})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
