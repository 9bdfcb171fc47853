#!/usr/bin/env bash
# Static check: no AurumAI service relies on PostgreSQL session state, so every service may
# reach the database through PgBouncer in transaction mode (docs/pgbouncer.md). Run by
# `make test` through backup-restore-check.sh.
#
# In transaction pooling a client gets a server connection for one transaction only; anything a
# statement leaves on the connection beyond its transaction is lost, or leaks to another client.
# This script reads the SQL in the Rust sources (every string literal of crates/**/*.rs and
# services/**/*.rs, line continuations joined) and the migrations (*.sql), and fails on:
#
#   session-set     SET name TO/= ..., SET ROLE, SET SESSION AUTHORIZATION, SET search_path
#                   (session level; SET LOCAL, SET TRANSACTION and SET CONSTRAINTS are fine)
#   set-config      set_config(name, value, false): the session-level form
#   listen-notify   LISTEN, UNLISTEN, NOTIFY, pg_notify(), and diesel/tokio-postgres
#                   notification streams in code
#   advisory-lock   pg_advisory_lock / pg_try_advisory_lock / *_shared / pg_advisory_unlock*
#                   (session locks; pg_advisory_xact_lock inside a transaction is fine)
#   temp-table      CREATE TEMP/TEMPORARY TABLE, VIEW or SEQUENCE
#   with-hold       DECLARE ... CURSOR WITH HOLD
#   sql-prepare     SQL-level PREPARE / DEALLOCATE (protocol-level named statements, which
#                   diesel-async uses, are handled by PgBouncer >= 1.21 with
#                   max_prepared_statements > 0)
#
# ALLOW below lists the exceptions, each with its reason: code that never goes through
# PgBouncer. A new exception needs a reason there and a line in docs/pgbouncer.md.
#
# Before the real scan, canaries prove every rule fires, and that the allowed forms (SET LOCAL,
# pg_advisory_xact_lock, UPDATE ... SET, set_config(..., true)) do not.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${AURUMAI_ROOT}"
have python3 || need_apt python3

python3 - <<'PY'
import fnmatch
import pathlib
import re
import sys

# (path glob, rule or "*", reason). Paths are relative to the repository root.
ALLOW = [
    ("crates/adapters/postgres/src/*/migrations/*/*.sql", "*",
     "migrations run only through each service's `migrate` (the Helm migration Job), which "
     "connects to PostgreSQL directly, never through PgBouncer"),
    ("crates/testkit/src/db.rs", "session-set",
     "test helper: SET ROLE on its own superuser connection to a test database, never pooled"),
]

RULES = [
    ("session-set", "stmt", re.compile(
        r"^SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)(SESSION\s+)?"
        r"(ROLE\b|SESSION\s+AUTHORIZATION\b|AUTHORIZATION\b|TIME\s+ZONE\b|SEARCH_PATH\b|"
        r"[A-Za-z_][A-Za-z0-9_.]*\s*(=|\bTO\b))", re.I)),
    ("set-config", "text", re.compile(r"\bset_config\s*\([^;]*?,\s*false\s*\)", re.I | re.S)),
    ("listen-notify", "stmt", re.compile(r"^(LISTEN|UNLISTEN|NOTIFY)\s+[A-Za-z_\"*]", re.I)),
    ("listen-notify", "text", re.compile(r"\bpg_notify\s*\(", re.I)),
    ("advisory-lock", "text", re.compile(
        r"\bpg_(try_)?advisory_(lock|unlock)(_shared|_all)?\s*\(", re.I)),
    ("temp-table", "text", re.compile(
        r"\bCREATE\s+((GLOBAL|LOCAL)\s+)?(TEMP|TEMPORARY)\s+(TABLE|VIEW|SEQUENCE)\b", re.I)),
    ("with-hold", "text", re.compile(r"\bCURSOR\s+WITH\s+HOLD\b", re.I)),
    ("sql-prepare", "stmt", re.compile(
        r"^(PREPARE\s+[A-Za-z_][A-Za-z0-9_]*\s*(\(|AS\b)|DEALLOCATE\b)", re.I)),
]
# Rust code (outside string literals) that subscribes to notifications.
CODE_RULES = [
    ("listen-notify", re.compile(r"\b(notifications_stream|AsyncMessage::Notification)\b")),
]


def rust_literals(src):
    """Yields (line, text, code) for each string literal of a Rust source, and the code
    outside literals and comments as one string (for CODE_RULES)."""
    out, code = [], []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
            continue
        m = re.match(r'b?r(#*)"', src[i:])
        if m and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j
            out.append((line, src[i + m.end():j]))
            line += src.count("\n", i, j)
            i = j + len(end)
            continue
        if c == '"' or (c == "b" and src.startswith('b"', i)
                        and not (i and (src[i - 1].isalnum() or src[i - 1] == "_"))):
            start = i + (2 if c == "b" else 1)
            j, buf = start, []
            while j < n and src[j] != '"':
                if src[j] == "\\" and j + 1 < n:
                    nxt = src[j + 1]
                    if nxt == "\n":
                        # A line continuation: the newline and the next line's indentation go.
                        j += 2
                        while j < n and src[j] in " \t\r\n":
                            j += 1
                        continue
                    buf.append({"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\",
                                "'": "'", "0": "\0"}.get(nxt, " "))
                    j += 2
                    continue
                buf.append(src[j])
                j += 1
            out.append((line, "".join(buf)))
            line += src.count("\n", i, j)
            i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", src[i:])
            if m:
                i += m.end()
                continue
        if c == "\n":
            line += 1
        code.append(c)
        i += 1
    return out, "".join(code)


def strip_sql_comments(sql):
    return re.sub(r"--[^\n]*", " ", sql)


def findings(text):
    """The rules a piece of SQL breaks."""
    found = []
    text = strip_sql_comments(text)
    for name, kind, rx in RULES:
        if kind == "text":
            if rx.search(text):
                found.append(name)
        else:
            for stmt in text.split(";"):
                if rx.search(stmt.strip()):
                    found.append(name)
                    break
    return found


def allowed(path, rule):
    return any(fnmatch.fnmatch(path, glob) and (r == "*" or r == rule) for glob, r, _ in ALLOW)


# --- Canaries: every rule must fire on its example, and the allowed forms must not. ---
BAD = {
    "session-set": ["SET search_path TO ingestion", "set role aurumai_ingestion",
                    "SELECT 1; SET statement_timeout = 0", "SET SESSION AUTHORIZATION x",
                    "SET TIME ZONE 'UTC'"],
    "set-config": ["SELECT set_config('aurum.x', $1, false)"],
    "listen-notify": ["LISTEN alerts", "NOTIFY alerts, 'x'", "SELECT pg_notify('a', 'b')"],
    "advisory-lock": ["SELECT pg_advisory_lock(1)", "SELECT pg_try_advisory_lock(1, 2)",
                      "SELECT pg_advisory_unlock_all()"],
    "temp-table": ["CREATE TEMP TABLE t (x int)", "create temporary table t as select 1"],
    "with-hold": ["DECLARE c CURSOR WITH HOLD FOR SELECT 1"],
    "sql-prepare": ["PREPARE q AS SELECT 1", "DEALLOCATE ALL"],
}
GOOD = ["SET LOCAL ROLE aurumai_ingestion", "SELECT pg_advisory_xact_lock(hashtext('x'))",
        "UPDATE auth.users SET username = $2 WHERE id = $1",
        "SELECT set_config('aurum.x', $1, true)", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "INSERT INTO t VALUES (1) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
        "cannot listen on {addr}", "set the password of the service role"]
problems = []
for rule, examples in BAD.items():
    for ex in examples:
        if rule not in findings(ex):
            problems.append(f"canary: rule {rule} missed {ex!r}")
for ex in GOOD:
    if findings(ex):
        problems.append(f"canary: {ex!r} was flagged ({', '.join(findings(ex))})")
lits, _ = rust_literals('let q = "UPDATE t \\\n    SET a = 1"; let s = "SET ROLE x"; // "SET ROLE y"\n')
if [t for _, t in lits] != ["UPDATE t SET a = 1", "SET ROLE x"]:
    problems.append(f"canary: the Rust literal reader is wrong: {lits!r}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    print("session-state check: the scanner failed its canaries, so it cannot be trusted", file=sys.stderr)
    sys.exit(1)

# --- The real scan. ---
root = pathlib.Path(".")
files = sorted(
    [p for d in ("crates", "services") for p in (root / d).rglob("*.rs")]
    + list((root / "crates/adapters/postgres/migrations").glob("*/*.sql"))
)
bad, used_allow, scanned = [], set(), 0
for p in files:
    rel = p.as_posix()
    if "/target/" in f"/{rel}":
        continue
    scanned += 1
    src = p.read_text(encoding="utf-8", errors="replace")
    if p.suffix == ".sql":
        items = [(1, src)]
        code = ""
    else:
        items, code = rust_literals(src)
    for line, text in items:
        for rule in findings(text):
            if allowed(rel, rule):
                used_allow.add((rel, rule))
                continue
            snippet = " ".join(text.split())[:100]
            bad.append(f"{rel}:{line}: [{rule}] {snippet}")
    for rule, rx in CODE_RULES:
        if rx.search(code):
            if allowed(rel, rule):
                used_allow.add((rel, rule))
            else:
                bad.append(f"{rel}: [{rule}] subscribes to notifications ({rx.pattern})")

for rel, rule in sorted(used_allow):
    reason = next(r for g, ru, r in ALLOW if fnmatch.fnmatch(rel, g) and ru in ("*", rule))
    print(f"session-state check: allowed {rule} in {rel}: {reason}", file=sys.stderr)
if bad:
    print("\n".join(bad), file=sys.stderr)
    print(f"session-state check FAILED: {len(bad)} use(s) of session state that would break "
          "behind PgBouncer in transaction mode (docs/pgbouncer.md). Make it transaction-scoped "
          "(SET LOCAL, set_config(..., true) or pg_advisory_xact_lock inside a transaction), or "
          "add a reasoned exception to deploy/scripts/session-state-check.sh.", file=sys.stderr)
    sys.exit(1)
print(f"session-state check passed: {scanned} files (Rust sources and migrations), "
      f"{len(BAD)} rules, canaries first", file=sys.stderr)
PY
