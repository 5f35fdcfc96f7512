#!/usr/bin/env bash
# Clients that hang up mid-request, and what that costs PostgreSQL: the server on a schema of 20,000 seeded users,
# `wrk` on an admin page (32 connections, 3 s; wrk closes its connections with requests in flight when it stops),
# five rounds. Each round prints how many of the server's database backends ended during it: a connection whose
# statement was cut off is not reused, so PostgreSQL has to start a new backend for it.
#
# Usage: bench/hang-ups.sh [GATEHOUSE_BINARY] [LABEL]
#   defaults: target/release/gatehouse, "gatehouse"; needs wrk, psql, and target/release/gatehouse-bench to seed.
#   PostgreSQL: $GATEHOUSE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test); the schema
#   `hangups` is made, and dropped at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/target/release/gatehouse}")
label=${2:-gatehouse}
pg=${GATEHOUSE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
export PGOPTIONS="-c client_min_messages=warning"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
app="hangups-$label"

psql -qAt "$pg" -c 'drop schema if exists hangups cascade' >/dev/null
"$root/target/release/gatehouse-bench" seed --users 20000 --database postgres --postgres-url "$pg" \
    --schema hangups >/dev/null

unset GATEHOUSE_CONFIG
export GATEHOUSE_DATABASE_URL="$pg?application_name=$app"
export GATEHOUSE_STORAGE__SCHEMA=hangups GATEHOUSE_DATA_DIR="$work" GATEHOUSE_SERVER__BIND="127.0.0.1:$port"
export GATEHOUSE_SERVER__SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
token=$("$bin" admin token create hang-ups | tail -1)
"$bin" serve >"$work/serve.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    psql -qAt "$pg" -c 'drop schema if exists hangups cascade' >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

url="http://127.0.0.1:$port/rest/admin/users?limit=100&search=bench1"
for _ in $(seq 50); do
    curl -sf -o /dev/null -H "authorization: Bearer $token" "$url" && break
    sleep 0.1
done
backends() {
    psql -qAt "$pg" -c "select pid from pg_stat_activity where application_name = '$app' order by pid" | sort
}

total=0
for round in 1 2 3 4 5; do
    before=$(backends)
    rate=$(wrk -t2 -c32 -d3s -H "authorization: Bearer $token" "$url" | awk '/Requests\/sec/ {print $2}')
    sleep 1
    after=$(backends)
    ended=$(comm -23 <(echo "$before") <(echo "$after") | grep -c . || true)
    total=$((total + ended))
    echo "round $round: $rate pages/s; backends before $(echo "$before" | grep -c .), ended during the round $ended," \
        "after $(echo "$after" | grep -c .)"
done
echo "$label: $total backends ended in 5 rounds"
