#!/usr/bin/env bash
# Loopback load on a cluster: NODES coffre gateways (release build) share one fresh
# PostgreSQL database, one array directory, one root key file and one admin token, as
# deploy/cluster describes; one loadgen per node runs the same scenario at the same time,
# each with CONCURRENCY clients, and the script prints each node's table and the sums.
#
#   COFFRE_BENCH_POSTGRES_URL=postgresql://coffre@127.0.0.1:5432/postgres \
#       NODES=3 benches/run-cluster-load.sh
#
# Environment:
#   COFFRE_BENCH_POSTGRES_URL  the PostgreSQL server's maintenance database URL (required;
#                              `conformance/postgres start` prints one as COFFRE_TEST_POSTGRES_URL)
#   NODES          gateways (default 3)
#   CONCURRENCY    clients per node (default 11: 33 in all, like the 32 of the one-node runs)
#   COUNT          objects per node (default 2000)
#   SIZE           object size (default 4KiB)
#   SCENARIO       loadgen subcommand: small (PUT then GET then DELETE, default) or putget
#   CARGO_TARGET_DIR, COFFRE, LOADGEN, SKIP_BUILD, MAX_SECONDS: as in run-load.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/coffre/target}
BIN="$CARGO_TARGET_DIR/release"
LOADGEN=${LOADGEN:-$BIN/loadgen}
COFFRE=${COFFRE:-$BIN/coffre}
NODES=${NODES:-3}
CONCURRENCY=${CONCURRENCY:-11}
COUNT=${COUNT:-2000}
SIZE=${SIZE:-4KiB}
SCENARIO=${SCENARIO:-small}
MAX_SECONDS=${MAX_SECONDS:-120}
SERVER=${COFFRE_BENCH_POSTGRES_URL:?set COFFRE_BENCH_POSTGRES_URL (see the header)}

if [[ -z "${SKIP_BUILD:-}" ]]; then
    (cd "$ROOT" && cargo build --release -p coffre-gateway --bin coffre -p coffre-benches --bin loadgen) || exit 1
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

database="coffre_cluster_bench_$RANDOM$RANDOM"
psql -q "$SERVER" -c "CREATE DATABASE $database" || exit 1
url="${SERVER%/*}/$database"
shared="$WORK/shared"
mkdir -p "$shared/array"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$shared/admin-token"
chmod 600 "$shared/admin-token"

endpoints=()
admin=""
for node in $(seq 1 "$NODES"); do
    dir="$WORK/node-$node"
    mkdir -p "$dir"
    cat >"$dir/coffre.toml" <<EOF
node_name = "node-$node"
admin_token_file = "$shared/admin-token"

[metadata]
kind = "postgres"
url = "$url"
pool_size = 32

[key_provider]
kind = "local-file"
path = "$shared/root.key"

[[arrays]]
name = "shared"
path = "$shared/array"

[bootstrap]
default_tenant = false
EOF
    "$COFFRE" serve --config "$dir/coffre.toml" --data-dir "$dir/data" \
        --s3-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$dir/out" 2>"$dir/log" &
    PIDS+=("$!")
    for _ in $(seq 300); do
        grep -q '^coffre listening s3=' "$dir/out" 2>/dev/null && break
        sleep 0.1
    done
    line=$(grep '^coffre listening s3=' "$dir/out") || { tail "$dir/log"; exit 1; }
    endpoints+=("$(sed -nE 's/^coffre listening s3=([^ ]+).*/\1/p' <<<"$line")")
    [[ -n "$admin" ]] || admin=$(sed -nE 's/.* admin=([^ ]+).*/\1/p' <<<"$line")
done

token=$(cat "$shared/admin-token")
curl -sf -H "Authorization: Bearer $token" -X POST "$admin/admin/v1/tenants" \
    -d '{"name": "bench"}' >/dev/null || { echo "tenant creation failed" >&2; exit 1; }
key=$(curl -sf -H "Authorization: Bearer $token" -X POST "$admin/admin/v1/tenants/bench/keys" \
    -d '{"role": "admin"}') || { echo "key creation failed" >&2; exit 1; }
access=$(sed -nE 's/.*"access_key_id": *"([^"]+)".*/\1/p' <<<"$key")
secret=$(sed -nE 's/.*"secret_access_key": *"([^"]+)".*/\1/p' <<<"$key")

echo "== $NODES nodes over $url, $SCENARIO --size $SIZE --count $COUNT --concurrency $CONCURRENCY per node"
for node in $(seq 1 "$NODES"); do
    # One bucket per node: the nodes' loads start together and do not wait for each other.
    "$LOADGEN" --endpoint "${endpoints[$((node - 1))]}" --access-key "$access" --secret-key "$secret" \
        --bucket "load-$node" --label "node-$node" --max-seconds "$MAX_SECONDS" \
        --json-out "$WORK/node-$node.json" \
        "$SCENARIO" --size "$SIZE" --count "$COUNT" --concurrency "$CONCURRENCY" \
        >"$WORK/node-$node.report" 2>&1 &
    LOADS+=("$!")
done
status=0
for pid in "${LOADS[@]}"; do wait "$pid" || status=1; done
for node in $(seq 1 "$NODES"); do
    echo "-- node-$node"
    grep -E '^(phase|PUT|GET|DELETE)' "$WORK/node-$node.report"
done
echo "-- all nodes (sum of ops/s; the phases ran at the same time on every node)"
cat "$WORK"/node-*.report | awk '$1 ~ /^(PUT|GET|DELETE)$/ { ops[$1] += $8; errors[$1] += $5 }
    END { for (p in ops) printf "%-7s %10.1f ops/s  %d errors\n", p, ops[p], errors[p] }'
exit $status
