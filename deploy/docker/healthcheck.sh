#!/bin/bash
# Container health probe for the gateway image (debian:bookworm-slim has no
# curl or wget): GET /healthz over bash's /dev/tcp, healthy only on HTTP 200.
# /healthz answers 503 when the store is unavailable and stays outside the
# API's load-shedding limit, so an overloaded gateway still reports healthy.
#
# Port: from GATEWAY_LISTEN (the image sets 0.0.0.0:8080), or HEALTHCHECK_PORT.
# Host: HEALTHCHECK_HOST, default 127.0.0.1 (the probe runs in the container).
set -u
listen=${GATEWAY_LISTEN:-127.0.0.1:8080}
port=${HEALTHCHECK_PORT:-${listen##*:}}
host=${HEALTHCHECK_HOST:-127.0.0.1}

if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "healthz: cannot connect to $host:$port" >&2
  exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
if ! IFS= read -r -t 4 status <&3; then
  echo "healthz: no answer from $host:$port" >&2
  exit 1
fi
status=${status%$'\r'}
case $status in
  "HTTP/1."?" 200"*) exit 0 ;;
esac
echo "healthz: $status" >&2
exit 1
