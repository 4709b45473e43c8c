#!/usr/bin/env bash
# CI: a second, independent S3 + SQS: LocalStack's own providers (S3Provider, SqsProvider, not
# moto), run on the host from PyPI, without Docker. Recipe and pitfalls:
# /work/shared/notes/localstack.md.
#
#   eval "$(bash .ci/localstack.sh start)"   # exports FAAS_TEST_AWS_URL and LOCALSTACK_PID
#   ... python -m pytest ... (tests/conftest.py's moto_url fixture then uses LocalStack) ...
#   bash .ci/localstack.sh stop "$LOCALSTACK_PID"     # SIGTERM, then SIGKILL after 5 s
#
# - Its own venv ($FAAS_LS_VENV, default /tmp/ls-venv) on pyenv's Python 3.13: localstack-core
#   claims 3.10 but needs >= 3.12 (3.11: SyntaxError in localstack/services/stores.py). Reused if
#   it already holds the pinned version (a second start installs nothing).
# - Pins: cbor2 6.x breaks it (No module named 'cbor2._decoder'); service_identity is needed but
#   not declared.
# - pyOpenSSL 26 breaks its certificate generator, so it gets a ready key + cert
#   (CUSTOM_SSL_CERT_PATH), made here with openssl.
# - GATEWAY_SERVER=hypercorn: the default (twisted) gateway ignores the host in GATEWAY_LISTEN and
#   listens on 0.0.0.0; hypercorn stays on 127.0.0.1. A free port is picked here; a port taken
#   meanwhile still prints "Ready." (the log says CannotListenError), so the log is checked.
# - SQS_ENDPOINT_STRATEGY=off: queue URLs http://127.0.0.1:PORT/ACCOUNT/NAME.
# - Ready when /_localstack/health says s3 and sqs are available (about 3 s; ~180 MB).
# - Stopping: SIGTERM stops it in about 2 s, but now and then (1 in 3-5 stops after a test run)
#   it hangs: its hypercorn server's shutdown() calls loop.stop() from another thread, which does
#   not wake the event loop if it already went back to select(). Nothing is kept (PERSISTENCE=0),
#   so after 5 s it gets SIGKILL.
# Progress goes to stderr; stdout carries only the export lines. The log and the state folder
# are in a mktemp -d folder, named on stderr (LOCALSTACK_DIR).
set -euo pipefail

venv=${FAAS_LS_VENV:-/tmp/ls-venv}
version=2026.3.0
pins=("localstack-core[base-runtime]==$version" 'cbor2==5.9.0' 'service_identity==26.1.0')

say() { echo "localstack.sh: $*" >&2; }

stop() {
    local pid=${1:?usage: localstack.sh stop PID}
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    say "pid $pid still there 5 s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

install() {
    if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('localstack-core') != '$version')" 2>/dev/null; then
        return
    fi
    local py
    py=$(pyenv root 2>/dev/null)/versions/3.13.0/bin/python
    [ -x "$py" ] || py=$(command -v python3.13 || command -v python3.12 || true)
    if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
        say "needs Python >= 3.12 (pyenv's 3.13.0, or python3.13/python3.12 on PATH)"
        exit 1
    fi
    say "installing localstack-core $version into $venv ($py)"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}" >&2 2>/dev/null \
        || "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}" >&2
}

start() {
    install
    local dir port url pid
    dir=$(mktemp -d /tmp/faas-localstack.XXXXXX)
    port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
        -keyout "$dir/key" -out "$dir/crt" 2>/dev/null
    cat "$dir/key" "$dir/crt" > "$dir/cert.pem"
    mkdir "$dir/tmp"
    # env -i: nothing of the caller's (AWS_*, a venv, PYTHONPATH) leaks into LocalStack.
    env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$dir" TMPDIR="$dir/tmp" \
        SERVICES=s3,sqs EAGER_SERVICE_LOADING=1 GATEWAY_SERVER=hypercorn \
        GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" \
        SQS_ENDPOINT_STRATEGY=off PERSISTENCE=0 DISABLE_EVENTS=1 DNS_ADDRESS=0 \
        SKIP_SSL_CERT_DOWNLOAD=1 CUSTOM_SSL_CERT_PATH="$dir/cert.pem" \
        "$venv/bin/python" -m localstack.runtime.main >"$dir/log" 2>&1 </dev/null &
    pid=$!
    url="http://127.0.0.1:$port"
    say "LOCALSTACK_DIR=$dir pid $pid on $url"
    for _ in $(seq 240); do     # 60 s
        if ! kill -0 "$pid" 2>/dev/null || grep -q CannotListenError "$dir/log"; then
            say "LocalStack did not start; its log ($dir/log):"; tail -30 "$dir/log" >&2
            stop "$pid"; exit 1
        fi
        if "$venv/bin/python" - "$url" <<'EOF' 2>/dev/null; then
import json, sys, urllib.request
h = json.load(urllib.request.urlopen(sys.argv[1] + "/_localstack/health", timeout=2))["services"]
sys.exit(not all(h.get(s) in ("available", "running") for s in ("s3", "sqs")))
EOF
            echo "export FAAS_TEST_AWS_URL=$url LOCALSTACK_PID=$pid LOCALSTACK_DIR=$dir"
            return
        fi
        sleep 0.25
    done
    say "LocalStack not healthy after 60 s; its log ($dir/log):"; tail -30 "$dir/log" >&2
    stop "$pid"; exit 1
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    install) install ;;
    *) echo "usage: $0 start | stop PID | install" >&2; exit 2 ;;
esac
