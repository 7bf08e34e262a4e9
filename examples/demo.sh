#!/usr/bin/env bash
# The Weft demo on a fresh machine: installs the guest toolchain, builds
# Weft, compiles examples/primes.c to wasm with weft-cc and runs it in local
# mode with 1 and 4 threads, then in chain mode (every thread a chained call
# restored from a snapshot, its results merged back), on this host and then
# on two more hosts started in this process (QUIC with mutual TLS on
# loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

bash guest-libs/setup-toolchain.sh
cargo build --release --bin weft
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/examples"
guest-libs/weft-cc -O2 examples/primes.c -o "$target/examples/primes.wasm"

for threads in 1 4; do
    "$target/release/weft" run "$target/examples/primes.wasm" 5000000 "$threads"
done
THREAD_MODE=chain "$target/release/weft" run "$target/examples/primes.wasm" 5000000 4
"$target/release/weft" run --thread-mode chain --hosts 3 --placement peers --cluster-stats \
    "$target/examples/primes.wasm" 5000000 4
