#!/usr/bin/env bash
# `make bench-gateway`: what the gateway adds to a request. One real backend (ingestion's
# GET /v1/machines/{id}, release build), nginx as a plain reverse proxy in front of it, a bare
# actix-web + awc forwarder (the gateway's HTTP stack doing nothing else), and the gateway
# (release build, token verification, rate limiting, with and without the audit log, limits too
# high to trigger) in front of it; wrk with the same connections and duration against each in
# the same run, and each proxy's CPU time per request from /proc. Writes the "Gateway" section
# of docs/benchmarks.md (the other sections stay).
#
#   deploy/scripts/bench-gateway.sh [--duration S] [--connections N] [--threads N]
#                                    [--light-connections N] [--no-write]
#
# Two runs per path: under load (--connections, default 32: throughput, and latency with
# queueing) and light (--light-connections, default 2: the latency a proxy adds per request).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=15
connections=32
threads=2
light=2
write=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --light-connections) light="$2"; shift 2 ;;
        --no-write) write=0; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown option: $1" ;;
    esac
done

ensure_build_deps
ensure_postgres
have nginx || need_apt_no_start nginx
have wrk || need_apt wrk
have openssl || need_apt openssl

cd "${AURUMAI_ROOT}"
log "building ingestion, the gateway and the bare forwarder (release profile)"
cargo build --release -p aurum-ingestion -p aurum-gateway --example bare_forwarder
bin="${CARGO_TARGET_DIR:-${AURUMAI_ROOT}/target}/release"

work="$(mktemp -d)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "${p}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    pg_psql -d postgres -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "${work}"
}
db="aurumai_bench_gateway_$$"
trap cleanup EXIT
pg_psql -d postgres -c "CREATE DATABASE ${db}" >/dev/null

tenant=bench
machine=truck-1
common=(
    AURUM_PROFILE=dev
    AURUM_HTTP__HOST=127.0.0.1
    "AURUM_DATABASE__HOST=${AURUMAI_PG_HOST}"
    "AURUM_DATABASE__PORT=${AURUMAI_PG_PORT}"
    "AURUM_DATABASE__NAME=${db}"
    "AURUM_DATABASE__ADMIN_USER=${AURUMAI_PG_SUPERUSER}"
    AURUM_TELEMETRY__LOG_LEVEL=warn
)

# --- the issuer: an RSA key made here, its JWKS served over HTTP, one signed access token ---
openssl genrsa -out "${work}/key.pem" 2048 2>/dev/null
mkdir -p "${work}/issuer"
issuer_port="$(free_port)"
issuer="http://127.0.0.1:${issuer_port}"
python3 - "${work}/key.pem" "${work}/issuer/jwks" "${work}/token" "${issuer}" "${tenant}" <<'PY'
import base64, json, subprocess, sys, time, uuid
key, jwks_out, token_out, iss, tenant = sys.argv[1:]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
mod = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], capture_output=True, text=True, check=True).stdout
n = bytes.fromhex(mod.strip().split("=", 1)[1])
json.dump({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "bench", "n": b64(n), "e": b64((65537).to_bytes(3, "big"))}]}, open(jwks_out, "w"))
now = int(time.time())
header = {"alg": "RS256", "typ": "at+jwt", "kid": "bench"}
claims = {"iss": iss, "sub": "bench-user", "aud": ["aurumai-api"], "exp": now + 6 * 3600, "iat": now, "nbf": now - 60,
          "jti": str(uuid.uuid4()), "client_id": "bench", "scope": "openid", "tenant": tenant, "roles": ["viewer"]}
signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(), capture_output=True, check=True).stdout
open(token_out, "w").write(signing_input + "." + b64(sig))
PY
(cd "${work}/issuer" && exec python3 -m http.server "${issuer_port}" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=("$!")
wait_tcp 127.0.0.1 "${issuer_port}" 10 || die "the JWKS server did not start"

# --- the backend: ingestion, migrated, one machine registered ---
backend_port="$(free_port)"
env "${common[@]}" "AURUM_HTTP__PORT=${backend_port}" AURUM_INGEST__MQTT_ENABLED=false \
    "AURUM_INGEST__SPOOL_DIR=${work}/spool" AURUM_FEATURES__PREDICTION_URL= \
    "${bin}/aurum-ingestion" >"${work}/ingestion.log" 2>&1 &
pids+=("$!")
wait_http "http://127.0.0.1:${backend_port}/readyz" 60 || { cat "${work}/ingestion.log" >&2; die "ingestion did not become ready"; }
curl -fsS -o /dev/null -X POST "http://127.0.0.1:${backend_port}/v1/machines" \
    -H "content-type: application/json" -H "x-aurum-tenant: ${tenant}" -H "x-aurum-user: bench" \
    -d "{\"id\":\"${machine}\",\"machine_type\":\"haul_truck\",\"site\":\"pit-a\"}"

# --- nginx: a plain reverse proxy with upstream keep-alive ---
nginx_port="$(free_port)"
mkdir -p "${work}/nginx/logs"
cat >"${work}/nginx/nginx.conf" <<CONF
worker_processes auto;
pid ${work}/nginx/nginx.pid;
error_log ${work}/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream backend { server 127.0.0.1:${backend_port}; keepalive 64; }
    server {
        listen 127.0.0.1:${nginx_port};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
CONF
nginx -p "${work}/nginx" -c "${work}/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid="$!"
pids+=("${nginx_pid}")
wait_tcp 127.0.0.1 "${nginx_port}" 10 || die "nginx did not start"

# --- the bare forwarder: the gateway's HTTP stack (actix-web, awc) and nothing else ---
bare_port="$(free_port)"
"${bin}/examples/bare_forwarder" "${bare_port}" "http://127.0.0.1:${backend_port}" >"${work}/bare.log" 2>&1 &
bare_pid="$!"
pids+=("${bare_pid}")
wait_tcp 127.0.0.1 "${bare_port}" 10 || { cat "${work}/bare.log" >&2; die "the bare forwarder did not start"; }

# --- the gateway ---
gateway_port="$(free_port)"
env "${common[@]}" "AURUM_HTTP__PORT=${gateway_port}" "AURUM_AUTH__ISSUER=${issuer}" \
    "AURUM_UPSTREAMS__INGESTION__URL=http://127.0.0.1:${backend_port}" \
    AURUM_RATE_LIMIT__PER_PRINCIPAL__REQUESTS=100000000 AURUM_RATE_LIMIT__PER_PRINCIPAL__PER_S=1 \
    AURUM_RATE_LIMIT__PER_TENANT__REQUESTS=100000000 AURUM_RATE_LIMIT__PER_TENANT__PER_S=1 \
    "${bin}/aurum-gateway" >"${work}/gateway.log" 2>&1 &
gateway_pid="$!"
pids+=("${gateway_pid}")
wait_http "http://127.0.0.1:${gateway_port}/healthz" 60 || { cat "${work}/gateway.log" >&2; die "the gateway did not start"; }
# The same gateway without the audit log: what the comparison with nginx (a proxy that
# records nothing) measures; the audited gateway above is what production runs.
lean_port="$(free_port)"
env "${common[@]}" "AURUM_HTTP__PORT=${lean_port}" "AURUM_AUTH__ISSUER=${issuer}" \
    "AURUM_UPSTREAMS__INGESTION__URL=http://127.0.0.1:${backend_port}" \
    AURUM_RATE_LIMIT__PER_PRINCIPAL__REQUESTS=100000000 AURUM_RATE_LIMIT__PER_PRINCIPAL__PER_S=1 \
    AURUM_RATE_LIMIT__PER_TENANT__REQUESTS=100000000 AURUM_RATE_LIMIT__PER_TENANT__PER_S=1 \
    AURUM_AUDIT__ENABLED=false \
    "${bin}/aurum-gateway" >"${work}/gateway-lean.log" 2>&1 &
lean_pid="$!"
pids+=("${lean_pid}")
wait_http "http://127.0.0.1:${lean_port}/healthz" 60 || { cat "${work}/gateway-lean.log" >&2; die "the second gateway did not start"; }
token="$(cat "${work}/token")"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer ${token}" \
    "http://127.0.0.1:${gateway_port}/api/v1/machines/${machine}")"
[[ "${code}" == 200 ]] || { cat "${work}/gateway.log" >&2; die "the gateway answered ${code} to the benchmark request"; }

# --- the runs: same connections and duration, one after the other ---
# CPU time (user + system, clock ticks) of processes, to charge each proxy its own work.
cpu_ticks() {
    local p total=0 t
    for p in "$@"; do
        t="$(awk '{print $14 + $15}' "/proc/${p}/stat" 2>/dev/null || echo 0)"
        total=$((total + t))
    done
    echo "${total}"
}
# The processes whose CPU a path's proxy uses: nginx's workers, or the one process.
proxy_pids() {
    case "$1" in
        direct) echo "" ;;
        nginx) pgrep -P "${nginx_pid}" | tr '\n' ' ' ;;
        bare) echo "${bare_pid}" ;;
        gateway) echo "${gateway_pid}" ;;
        lean) echo "${lean_pid}" ;;
    esac
}
run() {
    local name="$1" conns="$2" url="$3" path before after
    shift 3
    path="${name%-*}"
    local t="${threads}"
    ((conns < t)) && t="${conns}"
    log "wrk ${name}: ${conns} connections, ${t} threads, ${duration}s"
    # shellcheck disable=SC2046 # one pid per word
    before="$(cpu_ticks $(proxy_pids "${path}"))"
    wrk -t"${t}" -c"${conns}" -d"${duration}s" --latency "$@" "${url}" >"${work}/${name}.txt"
    # shellcheck disable=SC2046
    after="$(cpu_ticks $(proxy_pids "${path}"))"
    echo "proxy_cpu_ticks $((after - before))" >>"${work}/${name}.txt"
    cat "${work}/${name}.txt" >&2
}
tenant_headers=(-H "x-aurum-tenant: ${tenant}" -H "x-aurum-user: bench")
direct_url="http://127.0.0.1:${backend_port}/v1/machines/${machine}"
nginx_url="http://127.0.0.1:${nginx_port}/v1/machines/${machine}"
bare_url="http://127.0.0.1:${bare_port}/v1/machines/${machine}"
gateway_url="http://127.0.0.1:${gateway_port}/api/v1/machines/${machine}"
lean_url="http://127.0.0.1:${lean_port}/api/v1/machines/${machine}"
auth_header=(-H "authorization: Bearer ${token}")
# warm-up (pools, caches)
wrk -t1 -c4 -d2s "${tenant_headers[@]}" "${direct_url}" >/dev/null
wrk -t1 -c4 -d2s "${tenant_headers[@]}" "${nginx_url}" >/dev/null
wrk -t1 -c4 -d2s "${tenant_headers[@]}" "${bare_url}" >/dev/null
wrk -t1 -c4 -d2s "${auth_header[@]}" "${gateway_url}" >/dev/null
wrk -t1 -c4 -d2s "${auth_header[@]}" "${lean_url}" >/dev/null
for mode in load light; do
    conns="${connections}"
    [[ "${mode}" == light ]] && conns="${light}"
    run "direct-${mode}" "${conns}" "${direct_url}" "${tenant_headers[@]}"
    run "nginx-${mode}" "${conns}" "${nginx_url}" "${tenant_headers[@]}"
    run "bare-${mode}" "${conns}" "${bare_url}" "${tenant_headers[@]}"
    run "lean-${mode}" "${conns}" "${lean_url}" "${auth_header[@]}"
    run "gateway-${mode}" "${conns}" "${gateway_url}" "${auth_header[@]}"
done

metrics="$(curl -fsS "http://127.0.0.1:${gateway_port}/metrics")"
limited="$(printf '%s\n' "${metrics}" | awk '/^aurum_gateway_rate_limited_total/ {s += $2} END {print s + 0}')"
audited="$(printf '%s\n' "${metrics}" | awk '/^aurum_gateway_audit_written_total/ {print $2}')"
dropped="$(printf '%s\n' "${metrics}" | awk '/^aurum_gateway_audit_dropped_total/ {s += $2} END {print s + 0}')"

table="$(python3 - "${work}" "${connections}" "${light}" "$(getconf CLK_TCK)" <<'PY'
import re, sys
work, load_c, light_c, clk_tck = sys.argv[1:]
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000}[m.group(2)]
labels = {
    "direct": "backend direct",
    "nginx": "nginx -> backend",
    "bare": "bare actix-web + awc forwarder -> backend (no checks)",
    "lean": "gateway -> backend (tokens, rate limits; audit off)",
    "gateway": "gateway -> backend (tokens, rate limits, audit on)",
}
for mode, conns in (("load", load_c), ("light", light_c)):
    rows = {}
    for name in ("direct", "nginx", "bare", "lean", "gateway"):
        t = open(f"{work}/{name}-{mode}.txt").read()
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
        done = int(re.search(r"(\d+) requests in", t).group(1))
        ticks = int(re.search(r"proxy_cpu_ticks (-?\d+)", t).group(1))
        p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
        p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
        cpu_us = ticks / int(clk_tck) * 1e6 / max(done, 1)
        rows[name] = (rps, p50, p99, int(non2xx.group(1)) if non2xx else 0, cpu_us)
    title = "Under load" if mode == "load" else "Light load (the latency a proxy adds)"
    print(f"{title}: {conns} connections")
    print()
    print("| path | requests/s | vs nginx | p50 (ms) | p99 (ms) | added p50 over direct (ms) | added p99 over direct (ms) | proxy CPU per request (µs) | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (rps, p50, p99, errors, cpu_us) in rows.items():
        a50 = "-" if name == "direct" else f"{p50 - rows['direct'][1]:+.3f}"
        a99 = "-" if name == "direct" else f"{p99 - rows['direct'][2]:+.3f}"
        vs = f"{rps / rows['nginx'][0]:.0%}"
        cpu = "-" if name == "direct" else f"{cpu_us:.0f}"
        print(f"| {labels[name]} | {rps:,.0f} | {vs} | {p50:.3f} | {p99:.3f} | {a50} | {a99} | {cpu} | {errors} |")
    print()
PY
)"
printf '%s\n' "${table}" >&2
if grep -q "Non-2xx" "${work}"/gateway-*.txt; then
    warn "the gateway answered non-2xx responses during the run (see the table)"
fi

if [[ "${write}" == 1 ]]; then
    out=docs/benchmarks.md
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    section="${work}/section.md"
    {
        echo "## Gateway: added latency over the backend and over nginx"
        echo
        echo "Run on $(date -u +%Y-%m-%d) on $(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/Mem:/ {print $2}') GiB,"
        echo "$(nginx -v 2>&1 | sed 's/^nginx version: //'), PostgreSQL $(psql --version | awk '{print $3}'), with:"
        echo
        echo '```sh'
        echo "make bench-gateway BENCH_ARGS=\"--duration ${duration} --connections ${connections} --threads ${threads} --light-connections ${light}\""
        echo '```'
        echo
        printf '%s\n' "${table}"
        echo
        echo "During the gateway runs: ${audited:-0} audit entries written, ${dropped} dropped, ${limited} requests rate-limited."
        echo
        cat <<'TEXT'
How it is measured (deploy/scripts/bench-gateway.sh):

- Backend: the ingestion service (release build) answering `GET /v1/machines/{id}` for one
  registered machine (one indexed PostgreSQL read per request), called directly with the
  tenant headers.
- nginx: a plain reverse proxy (`worker_processes auto`, upstream keep-alive, no access log)
  in front of the same backend.
- Gateway: the release build with everything a production call goes through: RS256 token
  verification (key cached from the issuer's JWKS), role and tenant check, rate limits per
  principal and tenant (set too high to trigger), header rewriting, request id and trace
  context, the proxied call over the worker's pooled connection, security headers, CORS,
  request metrics, and an audit entry
  per request written asynchronously in batches to the hash chain in PostgreSQL.
- The same gateway with the audit log off (`audit.enabled=false`), in its own process: the
  comparison the target asks for (nginx records nothing); production runs with audit on.
- The bare forwarder (`services/gateway/examples/bare_forwarder.rs`): actix-web and a
  per-worker awc client, the gateway's HTTP stack, forwarding with no checks at all. The gap
  between it and nginx is the stack's; the gap between it and the gateway is the gateway's
  own work.
- Proxy CPU per request: the proxy's user + system CPU time during its run (from
  `/proc/<pid>/stat`; nginx: its worker processes) divided by the requests wrk completed.
  With every process on the same two cores, each microsecond a proxy spends is taken from
  the backend, PostgreSQL and wrk, which is what its throughput reflects.
- wrk with the same threads, connections and duration against each, one after the other,
  after a 2 s warm-up of each; percentiles are wrk's `--latency`. Under load every path runs
  at its own maximum throughput, so its latency includes queueing; the light runs (a couple
  of connections, no queueing) show what each proxy adds to a single request.
- Everything (wrk, nginx, gateway, backend, PostgreSQL, the JWKS server) shares the same
  cores, so a proxy's own CPU time shows up in the latency of the calls it serves.
TEXT
    } >"${section}"
    replace_section "${out}" "## Gateway" "${section}"
    log "wrote the Gateway section of ${out}"
fi
