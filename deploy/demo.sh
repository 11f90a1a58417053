#!/bin/sh
# The three-container demo cluster behind `make demo`, `make demo-down` and
# `make demo-clean`:
#   up     installs docker.io and docker-compose when missing (root), starts
#          dockerd when none answers, makes the base image when it is not
#          present (deploy/base-image.sh), builds the mom image, writes
#          deploy/demo.env once (random secrets, mode 0600, git-ignored),
#          starts mom1..mom3, waits until all three are ready and prints
#          their URLs, an admin token and curl lines to try;
#   down   stops and removes the containers and the network, keeps the
#          volumes (the next `up` continues with the same data);
#   clean  removes containers, network and volumes.
# Every command can be run again. Overrides (used by the tests):
# COMPOSE_PROJECT_NAME (default mom), MOM_DEMO_ENV_FILE, MOM_DEMO_PORT1..3,
# MOM_IMAGE (default mom:latest).
# SPDX-License-Identifier: MIT
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-mom}
export MOM_IMAGE=${MOM_IMAGE:-mom:latest}
export MOM_DEMO_ENV_FILE=${MOM_DEMO_ENV_FILE:-$here/demo.env}
envfile=$MOM_DEMO_ENV_FILE
ports="${MOM_DEMO_PORT1:-8081} ${MOM_DEMO_PORT2:-8082} ${MOM_DEMO_PORT3:-8083}"

compose() { docker-compose -f "$here/docker-compose.yml" "$@"; }

need_tools() {
    missing=
    command -v docker >/dev/null 2>&1 || missing="$missing docker.io"
    command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
    command -v curl >/dev/null 2>&1 || missing="$missing curl"
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages; run: sudo apt-get install -y$missing" >&2
        exit 1
    fi
    echo "installing:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

need_daemon() {
    docker info >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null 2>&1; then
        echo "no Docker daemon answers; start it (e.g. sudo systemctl start docker)" >&2
        exit 1
    fi
    log=/var/log/mom-demo-dockerd.log
    echo "starting dockerd (log $log)"
    nohup dockerd >"$log" 2>&1 </dev/null &
    n=0
    until docker info >/dev/null 2>&1; do
        n=$((n + 1))
        if [ $n -gt 60 ]; then
            echo "dockerd did not come up; see $log" >&2
            exit 1
        fi
        sleep 0.5
    done
}

secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

need_env() {
    [ -f "$envfile" ] && return 0
    (
        umask 077
        {
            echo "# mom demo secrets, generated once by deploy/demo.sh; keep private"
            echo "MOM_JWT_SECRET=$(secret)"
            echo "MOM_CLUSTER_SECRET=$(secret)"
            echo "MOM_DEMO_PASSWORD=$(secret | cut -c1-24)"
            echo "MOM_ADMIN_USERS=admin"
        } >"$envfile.tmp"
        mv "$envfile.tmp" "$envfile"
    )
    echo "wrote $envfile (mode 0600)"
}

env_value() { sed -n "s/^$1=//p" "$envfile" | tail -1; }

ready() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; }

# An admin token: log in as admin, whom MOM_DEMO=1 registers with
# MOM_DEMO_PASSWORD once the cluster has a leader (after the demo data).
admin_token() {
    port=$1
    body="{\"username\":\"admin\",\"password\":\"$(env_value MOM_DEMO_PASSWORD)\"}"
    n=0
    while :; do
        tok=$(curl -s -m 5 -XPOST "http://127.0.0.1:$port/v1/auth/token" -d "$body" |
            sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
        if [ -n "$tok" ]; then
            echo "$tok"
            return 0
        fi
        n=$((n + 1))
        [ $n -gt 60 ] && return 1
        sleep 0.5
    done
}

up() {
    need_tools
    need_daemon
    need_env
    "$here/base-image.sh" debian:bookworm-slim
    echo "building $MOM_IMAGE"
    docker build -q -f "$here/Dockerfile" -t "$MOM_IMAGE" "$here/.." >/dev/null
    compose up -d --no-build
    n=0
    for p in $ports; do
        until ready "$p"; do
            n=$((n + 1))
            if [ $n -gt 240 ]; then
                echo "the cluster is not ready after 120 s; logs:" >&2
                compose logs --tail=30 >&2 || true
                exit 1
            fi
            sleep 0.5
        done
    done
    set -- $ports
    tok=$(admin_token "$1") || {
        echo "cannot get an admin token from http://127.0.0.1:$1" >&2
        exit 1
    }
    echo
    echo "mom demo cluster is up: three containers, one leader elected without any flag"
    echo "  mom1  http://127.0.0.1:$1"
    echo "  mom2  http://127.0.0.1:$2"
    echo "  mom3  http://127.0.0.1:$3"
    echo "admin token (valid 1 h; user admin, password MOM_DEMO_PASSWORD in $envfile):"
    echo "  export TOKEN=$tok"
    echo "try (write through mom1, read through mom3):"
    echo "curl -s -XPUT -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$1/v1/queues/demo"
    echo "curl -s -XPOST -H \"Authorization: Bearer \$TOKEN\" -H 'Content-Type: text/plain' http://127.0.0.1:$1/v1/queues/demo/messages -d 'hello from mom1'"
    echo "curl -s -XPOST -H \"Authorization: Bearer \$TOKEN\" 'http://127.0.0.1:$3/v1/queues/demo/receive?max=10&wait_ms=2000&ack=auto'"
    echo "who leads: curl -s -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$1/v1/cluster"
    echo "stop (keeps the data): make demo-down; remove everything: make demo-clean"
}

case "$cmd" in
up) up ;;
down | clean)
    # nothing to stop without docker; compose insists on the env file
    command -v docker-compose >/dev/null 2>&1 && docker info >/dev/null 2>&1 || exit 0
    [ -f "$envfile" ] || export MOM_DEMO_ENV_FILE=/dev/null
    if [ "$cmd" = down ]; then
        compose down --remove-orphans
    else
        compose down --volumes --remove-orphans
    fi
    ;;
*)
    echo "usage: $0 up|down|clean" >&2
    exit 2
    ;;
esac
