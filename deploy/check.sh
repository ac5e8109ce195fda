#!/usr/bin/env bash
# Validates the deployment files in deploy/ as far as this machine allows,
# and says what it checked and what it skipped. Exit 0: every check that ran
# passed; exit 1: a real problem (each printed as FAIL).
#
#   bash deploy/check.sh
#
# What runs where:
#   LICENSE, Dockerfile/.dockerignore consistency, shell syntax: always.
#   systemd unit: `systemd-analyze verify` (warnings count as failures: an
#       ignored directive is lost hardening) and `systemd-analyze security
#       --offline` (exposure at most 2.0). systemd-analyze is installed with
#       apt-get (Debian's `systemd` package) when it is missing and we are root.
#   health probe: deploy/docker/healthcheck.sh against a stub HTTP server
#       (200 -> healthy, 503 -> unhealthy, nothing listening -> unhealthy).
#   real binary (GATEWAY_BIN, else target/release/gateway, else
#       target/debug/gateway; skipped when none is built, this script never
#       builds): both shipped configs start `gateway serve`, the health probe
#       passes against it, and SIGTERM stops it cleanly.
#   docker build: only when `docker` exists AND its daemon answers; set
#       DEPLOY_CHECK_DOCKER=0 to skip it anyway (it compiles the workspace).
#   nginx -t / caddy validate: only when the binaries are on PATH, or with
#       DEPLOY_CHECK_FETCH=1, which downloads Debian's nginx and caddy
#       packages with `apt-get download` into a temporary directory and runs
#       them from there (nothing is installed).
set -uo pipefail
cd "$(dirname "$0")/.."

failures=0
passed=0
skipped=0
ok() { echo "ok    $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
skip() { echo "skip  $*"; skipped=$((skipped + 1)); }
indent() { sed 's/^/      | /'; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

unit=deploy/systemd/gateway.service
dockerfile=deploy/docker/Dockerfile
probe=deploy/docker/healthcheck.sh

echo "== files"
for f in LICENSE .dockerignore "$unit" deploy/systemd/gateway.toml "$dockerfile" \
  "$probe" deploy/docker/gateway.toml deploy/proxy/Caddyfile deploy/proxy/nginx.conf \
  deploy/README.md; do
  [ -s "$f" ] || fail "$f is missing or empty"
done
# The canonical text of https://www.apache.org/licenses/LICENSE-2.0.txt.
license_sha=cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30
if [ "$(sha256sum LICENSE | cut -d' ' -f1)" = "$license_sha" ]; then
  ok "LICENSE is the Apache License 2.0 text, byte for byte"
else
  fail "LICENSE differs from the Apache License 2.0 text"
fi
if grep -q '^license = "Apache-2.0"' Cargo.toml; then
  ok "Cargo.toml declares Apache-2.0, matching LICENSE"
else
  fail "Cargo.toml does not declare license = \"Apache-2.0\""
fi
if bash -n "$probe" && bash -n "$0"; then
  ok "shell syntax of $probe and $0"
else
  fail "shell syntax"
fi

echo "== systemd unit"
if ! command -v systemd-analyze >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "      installing Debian's systemd package for systemd-analyze"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >"$tmp/apt.log" 2>&1 \
    || indent <"$tmp/apt.log"
fi
if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is not available (install Debian's systemd package)"
else
  # verify insists that ExecStart's program exists and is executable. The
  # unit names the installed path (/usr/local/bin/gateway), which a build
  # machine does not have, so a copy with ExecStart pointed at a program that
  # exists is verified; nothing else in the copy changes. The copy keeps the
  # unit's name: verify derives the dynamic user and directories from it.
  execstart=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
  stand_in=/bin/true
  [ -x target/release/gateway ] && stand_in=$PWD/target/release/gateway
  mkdir -p "$tmp/unit"
  sed "s#^ExecStart=$execstart #ExecStart=$stand_in #" "$unit" >"$tmp/unit/gateway.service"
  echo "      ExecStart $execstart -> $stand_in for the check"
  out=$(systemd-analyze verify "$tmp/unit/gateway.service" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && ! grep -q 'gateway.service' <<<"$out"; then
    ok "systemd-analyze verify $unit ($(systemd-analyze --version | head -n1))"
    [ -n "$out" ] && indent <<<"$out"   # notes about other units on this host
  else
    fail "systemd-analyze verify $unit (exit $rc)"
    indent <<<"$out"
  fi
  if systemd-analyze security --help 2>/dev/null | grep -q -- '--threshold'; then
    out=$(systemd-analyze security --no-pager --offline=true --threshold=20 "$tmp/unit/gateway.service" 2>&1)
    rc=$?
    level=$(grep -o 'Overall exposure level for gateway.service: [0-9.]*' <<<"$out" | grep -o '[0-9.]*$')
    if [ $rc -eq 0 ]; then
      ok "systemd-analyze security --offline: exposure ${level:-?} (at most 2.0 allowed)"
    else
      fail "systemd-analyze security --offline: exposure ${level:-?}, more than 2.0 (exit $rc)"
      grep '✗' <<<"$out" | indent
    fi
  else
    skip "systemd-analyze security --offline (needs systemd >= 250)"
  fi
fi
# Settings the deployment guide promises; verify cannot tell they are gone.
missing=()
for want in DynamicUser=yes StateDirectory=gateway ProtectSystem=strict ProtectHome=yes \
  PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet= AmbientCapabilities= \
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
  LockPersonality=yes MemoryDenyWriteExecute=yes RestrictNamespaces=yes \
  ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
  ProtectControlGroups=yes UMask=0077 Restart=on-failure \
  'EnvironmentFile=-/etc/gateway/secrets.env' \
  'ExecStart=/usr/local/bin/gateway serve --config /etc/gateway/gateway.toml'; do
  grep -qxF "$want" "$unit" || missing+=("$want")
done
if [ ${#missing[@]} -eq 0 ]; then
  ok "unit carries every promised hardening setting"
else
  fail "unit lacks: ${missing[*]}"
fi
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
if [ -n "$stop" ] && [ "$stop" -ge 60 ]; then
  ok "TimeoutStopSec=$stop leaves time for the graceful drain"
else
  fail "TimeoutStopSec must be at least 60 s (modem sends take up to 60 s)"
fi

echo "== container"
# Static checks that need no Docker: every COPY source exists and is not
# excluded by .dockerignore, and the image runs as a fixed non-root UID.
copy_ok=1
while read -r src; do
  [ -e "$src" ] || { fail "Dockerfile COPY source $src does not exist"; copy_ok=0; continue; }
  top=${src%%/*}
  if grep -qxE "/?${top}/?" .dockerignore; then
    fail "Dockerfile COPY source $src is excluded by .dockerignore"
    copy_ok=0
  fi
done < <(grep -E '^COPY ' "$dockerfile" | grep -v -- '--from=' | awk '{print $2}' | grep -vx '\.')
[ $copy_ok = 1 ] && ok "Dockerfile COPY sources exist and are in the build context"
for need in target/ gateway-data/ fuzz/target/; do
  grep -qxF "$need" .dockerignore || fail ".dockerignore does not exclude $need"
done
for need in Cargo.toml Cargo.lock gateway adapters classifier fixtures tests; do
  grep -qxE "/?${need}/?" .dockerignore && fail ".dockerignore excludes $need, which cargo needs"
done
user=$(sed -n 's/^USER \([0-9]*\)\(:[0-9]*\)\{0,1\}$/\1/p' "$dockerfile")
if [ -n "$user" ] && [ "$user" != 0 ]; then
  ok "image runs as fixed non-root UID $user"
else
  fail "Dockerfile needs USER <numeric uid other than 0>"
fi
shape_ok=1
for need in '^FROM rust:bookworm AS build' '^FROM debian:bookworm-slim' \
  'cargo build --release --locked --bin gateway' '^VOLUME /var/lib/gateway' '^EXPOSE 8080' \
  '^HEALTHCHECK ' '^ENTRYPOINT \["gateway"\]' \
  '^CMD \["serve", "--config", "/etc/gateway/gateway.toml"\]'; do
  grep -qE -- "$need" "$dockerfile" || { fail "Dockerfile lacks $need"; shape_ok=0; }
done
[ $shape_ok = 1 ] && ok "Dockerfile shape (multi-stage, volume, port, healthcheck, entrypoint, cmd)"

if command -v python3 >/dev/null; then
  # A stub that answers /healthz with the status named in $tmp/status.
  cat >"$tmp/stub.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(open(sys.argv[2]).read()) if self.path == "/healthz" else 404
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
  port=$(free_port)
  echo 200 >"$tmp/status"
  python3 "$tmp/stub.py" "$port" "$tmp/status" 2>"$tmp/stub.log" &
  pids+=($!)
  for _ in $(seq 50); do GATEWAY_LISTEN=0.0.0.0:$port bash "$probe" 2>/dev/null && break; sleep 0.1; done
  # Exit status of the probe for: 200, 503, nothing listening.
  GATEWAY_LISTEN=0.0.0.0:$port bash "$probe" 2>/dev/null; e200=$?
  echo 503 >"$tmp/status"
  GATEWAY_LISTEN=0.0.0.0:$port bash "$probe" 2>/dev/null; e503=$?
  kill "${pids[-1]}" 2>/dev/null; wait "${pids[-1]}" 2>/dev/null
  GATEWAY_LISTEN=0.0.0.0:$port bash "$probe" 2>/dev/null; enone=$?
  if [ $e200 = 0 ] && [ $e503 != 0 ] && [ $enone != 0 ]; then
    ok "health probe: 200 healthy, 503 unhealthy, closed port unhealthy"
  else
    fail "health probe exit codes: 200 -> $e200 (want 0), 503 -> $e503, closed port -> $enone (want non-zero)"
  fi
else
  skip "health probe test (no python3 for the stub server)"
fi

bin=${GATEWAY_BIN:-}
[ -z "$bin" ] && [ -x target/release/gateway ] && bin=target/release/gateway
[ -z "$bin" ] && [ -x target/debug/gateway ] && bin=target/debug/gateway
if [ -z "$bin" ] || ! command -v python3 >/dev/null; then
  skip "shipped configs against the real binary (no gateway binary built; set GATEWAY_BIN)"
else
  for cfg in deploy/docker/gateway.toml deploy/systemd/gateway.toml; do
    port=$(free_port)
    data="$tmp/data-${cfg//\//_}"
    GATEWAY_LISTEN=127.0.0.1:$port GATEWAY_DATA_DIR=$data NO_COLOR=1 \
      "$bin" serve --config "$cfg" >"$tmp/serve.log" 2>&1 &
    gw=$!
    pids+=($gw)
    healthy=0
    for _ in $(seq 100); do
      if GATEWAY_LISTEN=0.0.0.0:$port bash "$probe" 2>/dev/null; then healthy=1; break; fi
      kill -0 $gw 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM $gw 2>/dev/null
    stopped=0
    for _ in $(seq 100); do kill -0 $gw 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
    wait $gw 2>/dev/null
    rc=$?
    if [ $healthy = 1 ] && [ $stopped = 1 ] && [ $rc = 0 ]; then
      ok "$bin serve --config $cfg: healthy, stopped cleanly on SIGTERM"
    else
      fail "$bin serve --config $cfg: healthy=$healthy stopped=$stopped exit=$rc"
      indent <"$tmp/serve.log"
    fi
  done
fi

if [ "${DEPLOY_CHECK_DOCKER:-1}" = 0 ]; then
  skip "docker build (DEPLOY_CHECK_DOCKER=0)"
elif ! command -v docker >/dev/null; then
  skip "docker build (no docker here)"
elif ! docker info >/dev/null 2>&1; then
  skip "docker build (docker client present, but no daemon answers)"
elif docker build -f "$dockerfile" -t sms-gateway:check . >"$tmp/docker.log" 2>&1; then
  ok "docker build -f $dockerfile ."
else
  fail "docker build -f $dockerfile ."
  tail -n 30 "$tmp/docker.log" | indent
fi

echo "== reverse proxy"
nginx_bin=$(command -v nginx || true)
caddy_bin=$(command -v caddy || true)
if [ "${DEPLOY_CHECK_FETCH:-0}" = 1 ] && { [ -z "$nginx_bin" ] || [ -z "$caddy_bin" ]; }; then
  echo "      fetching Debian's nginx and caddy packages into a temporary directory"
  mkdir -p "$tmp/debs" && (
    cd "$tmp/debs" || exit 1
    apt-get download nginx caddy >"$tmp/fetch.log" 2>&1 || { apt-get update -qq && apt-get download nginx caddy; } >>"$tmp/fetch.log" 2>&1
    for d in ./*.deb; do dpkg -x "$d" root; done
  )
  [ -z "$nginx_bin" ] && [ -x "$tmp/debs/root/usr/sbin/nginx" ] && nginx_bin=$tmp/debs/root/usr/sbin/nginx
  [ -z "$caddy_bin" ] && [ -x "$tmp/debs/root/usr/bin/caddy" ] && caddy_bin=$tmp/debs/root/usr/bin/caddy
fi

if [ -z "$nginx_bin" ]; then
  skip "nginx -t (no nginx; DEPLOY_CHECK_FETCH=1 fetches one)"
elif ! command -v openssl >/dev/null; then
  skip "nginx -t (no openssl for a stand-in certificate)"
else
  # nginx -t opens the certificate and log files, so the site file is tested
  # with a throw-away certificate and logs in the temporary directory, inside
  # a minimal main config like Debian's (which includes conf.d/*.conf in http).
  n=$tmp/nginx
  mkdir -p "$n"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=sms.example.com \
    -keyout "$n/key.pem" -out "$n/cert.pem" >/dev/null 2>&1
  sed -e "s#/etc/letsencrypt/live/sms.example.com/fullchain.pem#$n/cert.pem#" \
    -e "s#/etc/letsencrypt/live/sms.example.com/privkey.pem#$n/key.pem#" \
    -e "s#/var/log/nginx/#$n/#" deploy/proxy/nginx.conf >"$n/gateway.conf"
  cat >"$n/main.conf" <<EOF
pid $n/nginx.pid;
error_log $n/error.log;
events {}
http {
    client_body_temp_path $n/body;
    proxy_temp_path $n/proxy;
    fastcgi_temp_path $n/fastcgi;
    uwsgi_temp_path $n/uwsgi;
    scgi_temp_path $n/scgi;
    access_log $n/access.log;
    include $n/gateway.conf;
}
EOF
  if out=$("$nginx_bin" -t -q -p "$n" -e "$n/error.log" -c "$n/main.conf" 2>&1); then
    ok "nginx -t deploy/proxy/nginx.conf ($("$nginx_bin" -v 2>&1 | sed 's/.*: //'))"
  else
    fail "nginx -t deploy/proxy/nginx.conf"
    indent <<<"$out"
  fi
fi

if [ -z "$caddy_bin" ]; then
  skip "caddy validate (no caddy; DEPLOY_CHECK_FETCH=1 fetches one)"
else
  c=$tmp/caddy
  mkdir -p "$c"
  sed "s#/var/log/caddy/#$c/#" deploy/proxy/Caddyfile >"$c/Caddyfile"
  if out=$(HOME=$c XDG_DATA_HOME=$c XDG_CONFIG_HOME=$c "$caddy_bin" validate --adapter caddyfile --config "$c/Caddyfile" 2>&1); then
    ok "caddy validate deploy/proxy/Caddyfile ($("$caddy_bin" version | cut -d' ' -f1))"
    grep -qi 'not formatted' <<<"$out" && echo "      note: caddy fmt would reformat the Caddyfile"
  else
    fail "caddy validate deploy/proxy/Caddyfile"
    indent <<<"$out"
  fi
fi

echo "== deploy/check.sh: $passed ok, $failures FAIL, $skipped skipped"
[ "$failures" -eq 0 ]
