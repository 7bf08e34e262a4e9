#!/usr/bin/env bash
# Builds the guest C++ standard library (libc++ and libc++abi) for
# wasm32-wasi-threads from the sources of the LLVM that the guest clang
# belongs to, and installs it into the sysroot that weft-c++ uses.
#
#   build-libcxx.sh SYSROOT
#
# Debian's libc++-19-dev-wasm32 is built without threads (no atomics or
# bulk memory), which wasm-ld refuses in a shared-memory module, so the
# runtimes are built here instead: once per machine, in a cache outside
# the clone (a build takes about 10 minutes on 2 cores), then copied into
# each sysroot in a second.
#
# Every source is compiled by weft-cc, through LLVM IR, so the library's
# own atomic instructions (shared_ptr counts, call_once, atomic wait and
# notify, static-local guards) become libweft calls, as the program's do:
# in chain mode they then act on one value for every thread.
#
# One change to LLVM's sources (libcxx-wasm-wait.patch): std::atomic
# wait and notify (and so std::barrier, std::latch and the semaphores)
# use wasm's memory.atomic.wait64/notify, where libc++ would poll with
# sleeps of up to 64 ms.
#
# Exceptions are off (as in wasi-sdk): clang 19 emits the legacy
# exception-handling opcodes, which wasmtime 48 does not run.
#
# Environment: WEFT_CXX_CACHE (default /var/cache/weft/libcxx).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sysroot=${1:?usage: build-libcxx.sh SYSROOT}
sysroot=$(cd "$sysroot" && pwd)
cache=${WEFT_CXX_CACHE:-/var/cache/weft/libcxx}
llvm_version=19.1.7
package=llvm-toolchain-19
tarball=${package}_$llvm_version.orig.tar.xz

log() { printf 'build-libcxx: %s\n' "$*" >&2; }
# shellcheck source=guest-libs/debian-sources.sh
. "$here/debian-sources.sh"

# What the build depends on, besides the LLVM sources: this script, the
# atomic lowering and the headers every guest source sees. A change to
# any of them makes a new build (in a folder of its own).
key=$( {
    clang-19 --version | head -n1
    cat "$here/build-libcxx.sh" "$here/libcxx-wasm-wait.patch" "$here/lower-atomics.py"
    find "$here/libc-overlay" "$here/include" -type f | LC_ALL=C sort | xargs cat
} | sha256sum | cut -c1-16)
prefix=$cache/$llvm_version-$key
libdir=$sysroot/lib/wasm32-wasi-threads
installed=$libdir/.weft-libcxx-$key

if [ -f "$installed" ] && [ -f "$libdir/libc++.a" ]; then
    exit 0
fi

mkdir -p "$cache"
exec 8>"$cache/.lock"
flock 8
# What an interrupted build left.
rm -rf "$cache"/build-* "$cache"/*.tmp

fetch_sources() {
    [ -f "$cache/src/$tarball" ] && return
    local sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    local entry=/etc/apt/sources.list.d/weft-bookworm-src.sources
    [ -f "$entry" ] || add_debian_source deb-src bookworm "$entry"
    "${sudo_cmd[@]}" apt-get update -qq
    log "fetching the $package sources (about 160 MB)"
    local tmp
    tmp=$(mktemp -d "$cache/fetch.XXXXXX")
    chmod 755 "$tmp" # apt downloads as the _apt user
    (cd "$tmp" && apt-get source --download-only -qq "$package" >/dev/null 2>&1) || {
        rm -rf "$tmp"
        log "apt-get source $package failed"
        exit 1
    }
    # The upstream tarball of the guest clang's own version, or nothing.
    if [ ! -f "$tmp/$tarball" ]; then
        rm -rf "$tmp"
        log "Debian's $package sources are not LLVM $llvm_version"
        exit 1
    fi
    mkdir -p "$cache/src"
    mv "$tmp/$tarball" "$cache/src/$tarball"
    rm -rf "$tmp"
}

build() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v ninja >/dev/null || missing+=(ninja-build)
    command -v patch >/dev/null || missing+=(patch)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        local sudo_cmd=()
        [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    fetch_sources

    local work=$cache/build-$key
    rm -rf "$work"
    mkdir -p "$work"
    log "unpacking libcxx, libcxxabi and the runtimes build"
    local top=${package}_$llvm_version
    tar -xJf "$cache/src/$tarball" -C "$work" \
        "$top/libcxx" "$top/libcxxabi" "$top/runtimes" "$top/cmake" "$top/llvm/cmake" \
        "$top/llvm/utils/llvm-lit" "$top/third-party"
    patch -s -d "$work/$top" -p1 <"$here/libcxx-wasm-wait.patch"

    # The compiler is weft-cc with this sysroot: target, -pthread, Weft's
    # libc headers and the atomic lowering come with it. No test program
    # can run at configure time, so CMake's checks only compile, and a
    # check for a library function always passes: those whose answer
    # changes the code are given here (wasi-libc has no
    # __cxa_thread_atexit_impl; libc++abi then keeps thread_local
    # destructors itself).
    log "configuring (cmake)"
    WEFT_SYSROOT=$sysroot cmake -G Ninja -S "$work/$top/runtimes" -B "$work/build" \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix.tmp" \
        -DCMAKE_SYSTEM_NAME=Generic \
        -DCMAKE_SYSTEM_PROCESSOR=wasm32 \
        -DCMAKE_C_COMPILER="$here/weft-cc" \
        -DCMAKE_CXX_COMPILER="$here/weft-cc" \
        -DCMAKE_C_COMPILER_TARGET=wasm32-wasi-threads \
        -DCMAKE_CXX_COMPILER_TARGET=wasm32-wasi-threads \
        -DCMAKE_AR="$(command -v llvm-ar-19)" \
        -DCMAKE_RANLIB="$(command -v llvm-ranlib-19)" \
        -DCMAKE_C_COMPILER_WORKS=ON \
        -DCMAKE_CXX_COMPILER_WORKS=ON \
        -DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY \
        -DLLVM_COMPILER_CHECKED=ON \
        -DLLVM_ENABLE_RUNTIMES="libcxx;libcxxabi" \
        -DLLVM_INCLUDE_TESTS=OFF \
        -DUNIX=ON \
        -DLIBCXX_ENABLE_SHARED=OFF \
        -DLIBCXX_ENABLE_STATIC=ON \
        -DLIBCXX_ENABLE_EXCEPTIONS=OFF \
        -DLIBCXX_ENABLE_THREADS=ON \
        -DLIBCXX_HAS_PTHREAD_API=ON \
        -DLIBCXX_HAS_MUSL_LIBC=ON \
        -DLIBCXX_ENABLE_FILESYSTEM=ON \
        -DLIBCXX_ENABLE_TIME_ZONE_DATABASE=OFF \
        -DLIBCXX_ENABLE_ABI_LINKER_SCRIPT=OFF \
        -DLIBCXX_CXX_ABI=libcxxabi \
        -DLIBCXX_INCLUDE_TESTS=OFF \
        -DLIBCXX_INCLUDE_BENCHMARKS=OFF \
        -DLIBCXX_INCLUDE_DOCS=OFF \
        -DLIBCXXABI_ENABLE_SHARED=OFF \
        -DLIBCXXABI_ENABLE_STATIC=ON \
        -DLIBCXXABI_ENABLE_EXCEPTIONS=OFF \
        -DLIBCXXABI_ENABLE_THREADS=ON \
        -DLIBCXXABI_HAS_PTHREAD_API=ON \
        -DLIBCXXABI_USE_LLVM_UNWINDER=OFF \
        -DLIBCXXABI_SILENT_TERMINATE=ON \
        -DLIBCXXABI_INCLUDE_TESTS=OFF \
        -DLIBCXXABI_HAS_CXA_THREAD_ATEXIT_IMPL=OFF \
        >"$work/configure.log" 2>&1 || {
        tail -n 30 "$work/configure.log" >&2
        log "cmake failed (log: $work/configure.log)"
        exit 1
    }
    log "building libc++ and libc++abi (about 10 minutes on 2 cores)"
    WEFT_SYSROOT=$sysroot ninja -C "$work/build" -j "$(nproc)" install-cxx install-cxxabi \
        >"$work/build.log" 2>&1 || {
        grep -m 20 -B 2 -A 10 'error' "$work/build.log" >&2 || tail -n 30 "$work/build.log" >&2
        log "build failed (log: $work/build.log)"
        exit 1
    }
    rm -rf "$prefix"
    mv "$prefix.tmp" "$prefix"
    rm -rf "$work"
}

if [ ! -f "$prefix/lib/libc++.a" ]; then
    build
fi

# Into the sysroot, where clang++ looks for the C++ headers
# (include/c++/v1) and libraries.
rm -rf "$sysroot/include/c++"
mkdir -p "$sysroot/include" "$libdir"
cp -r "$prefix/include/c++" "$sysroot/include/c++"
for f in "$prefix"/lib/*.a; do
    cp "$f" "$libdir/"
done
rm -f "$libdir"/.weft-libcxx-*
touch "$installed"
log "C++ standard library ready in $sysroot"
