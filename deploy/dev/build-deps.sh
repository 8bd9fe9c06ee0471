#!/usr/bin/env bash
# Installs what building Coffre needs beyond the Rust toolchain: libclang for the rocksdb
# crate's bindgen and a C++ compiler for RocksDB itself. Sourced by deploy/dev/run and
# conformance/run; does nothing when everything is already there.
set -euo pipefail

coffre_need_apt=()
dpkg -s libclang-dev >/dev/null 2>&1 || coffre_need_apt+=(libclang-dev)
command -v clang >/dev/null 2>&1 || coffre_need_apt+=(clang)
command -v g++ >/dev/null 2>&1 || coffre_need_apt+=(g++)
if [ "${#coffre_need_apt[@]}" -gt 0 ]; then
  echo "==> installing build dependencies: ${coffre_need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${coffre_need_apt[@]}" >/dev/null
fi
# One cache that outlives any clone: a warm machine rebuilds only Coffre's own crates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre/target}"
