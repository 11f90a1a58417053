#!/bin/sh
# Starts, stops or shows a three-node mom cluster on loopback (client ports
# 8081-8083, peer ports 9091-9093). Everything lives under DIR: one data dir
# per node, their logs, pid files, and the shared JWT and cluster secrets
# (generated on first start). No bootstrap flag: on the first start every
# member finds the others' storage fresh too and they form the cluster; a
# member whose data was wiped later abstains until it has caught up.
# Usage: deploy/local-cluster.sh start|stop|status DIR   (MOMD=path/to/momd)
# SPDX-License-Identifier: MIT
set -eu

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
momd=${MOMD:-$here/build/momd}
peers="1=127.0.0.1:9091,2=127.0.0.1:9092,3=127.0.0.1:9093"

alive() { [ -f "$dir/node$1.pid" ] && kill -0 "$(cat "$dir/node$1.pid")" 2>/dev/null; }

case "$cmd" in
start)
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/cluster-secret" ]; then
        umask 077
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/jwt-secret"
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/cluster-secret"
    fi
    for i in 1 2 3; do
        if alive "$i"; then
            echo "node $i already running (pid $(cat "$dir/node$i.pid"))"
            continue
        fi
        mkdir -p "$dir/node$i"
        MOM_NODE_ID=$i MOM_PEERS=$peers MOM_HTTP_ADDR=127.0.0.1:808$i \
            MOM_PEER_ADDR=127.0.0.1:909$i MOM_DATA_DIR="$dir/node$i" \
            MOM_JWT_SECRET=$(cat "$dir/jwt-secret") \
            MOM_CLUSTER_SECRET=$(cat "$dir/cluster-secret") \
            nohup "$momd" >"$dir/node$i.out" 2>"$dir/node$i.log" </dev/null &
        echo $! >"$dir/node$i.pid"
    done
    for i in 1 2 3; do
        n=0
        until grep -q "MOMD READY" "$dir/node$i.out" 2>/dev/null; do
            n=$((n + 1))
            if [ $n -gt 100 ] || ! alive "$i"; then
                echo "node $i failed to start; see $dir/node$i.log" >&2
                exit 1
            fi
            sleep 0.1
        done
        echo "node $i: http://127.0.0.1:808$i (log $dir/node$i.log)"
    done
    n=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/readyz)" = 200 ] &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8082/readyz)" = 200 ] &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8083/readyz)" = 200 ]; do
        n=$((n + 1))
        if [ $n -gt 100 ]; then
            echo "no leader after 10 s; see the logs in $dir" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "cluster ready; JWT secret in $dir/jwt-secret"
    ;;
stop)
    for i in 1 2 3; do
        if alive "$i"; then
            kill -TERM "$(cat "$dir/node$i.pid")"
        fi
    done
    for i in 1 2 3; do
        n=0
        while alive "$i" && [ $n -lt 100 ]; do
            n=$((n + 1))
            sleep 0.1
        done
        if alive "$i"; then
            kill -KILL "$(cat "$dir/node$i.pid")"
        fi
        rm -f "$dir/node$i.pid"
    done
    ;;
status)
    for i in 1 2 3; do
        if alive "$i"; then
            st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:808$i/readyz" || true)
            echo "node $i: running (pid $(cat "$dir/node$i.pid")), readyz $st"
        else
            echo "node $i: stopped"
        fi
    done
    ;;
*)
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
    ;;
esac
