#!/usr/bin/env bash
# Installs what guests need on a fresh Debian bookworm machine and assembles a
# thread-enabled wasm32 sysroot for `weft-cc`:
#   - clang-19, lld-19 and the wasm32 compiler-rt builtins (Debian bookworm);
#   - wasi-libc headers (Debian bookworm-backports: bookworm's own package
#     predates pthread.h);
#   - the thread-enabled wasi-libc objects shipped with rustup's
#     wasm32-wasip1-threads target (libc.a, crt1-*.o);
#   - the wasm32-wasip1-threads Rust target for Rust guests;
#   - componentize-py (PyPI) for component guests in Python;
#   - libc++ and libc++abi with threads for C++ guests (weft-c++), built
#     from LLVM's sources once per machine by build-libcxx.sh and copied
#     into the sysroot.
# Idempotent: a second run only checks and exits in well under a second.
#
# Environment: WEFT_SYSROOT (default: guest-libs/sysroot beside this script).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sysroot=${WEFT_SYSROOT:-$here/sysroot}
stamp=$sysroot/.weft-sysroot-v1

log() { printf 'setup-toolchain: %s\n' "$*" >&2; }
# shellcheck source=guest-libs/debian-sources.sh
. "$here/debian-sources.sh"

have_clang() {
    command -v clang-19 >/dev/null && command -v wasm-ld-19 >/dev/null &&
        [ -f /usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a ]
}

rust_threads_libdir() {
    local root
    root=$(rustc --print sysroot)
    echo "$root/lib/rustlib/wasm32-wasip1-threads/lib/self-contained"
}

# componentize-py, which builds component guests from Python (PyPI; no wasm C
# toolchain needed), in a virtual environment beside this script.
python_env=$here/python
install_componentize_py() {
    if python3 -m venv "$python_env" 2>/dev/null; then
        "$python_env/bin/pip" install -q --disable-pip-version-check "componentize-py==0.25.1"
        return
    fi
    # No venv module (e.g. Debian's python3 without python3-venv): a plain
    # package folder and a launcher.
    rm -rf "$python_env"
    mkdir -p "$python_env/bin"
    python3 -m pip install -q --disable-pip-version-check --target "$python_env/lib" \
        "componentize-py==0.25.1"
    cat >"$python_env/bin/componentize-py" <<LAUNCHER
#!/bin/sh
PYTHONPATH="$python_env/lib\${PYTHONPATH:+:\$PYTHONPATH}" exec python3 -c \\
    'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' "\$@"
LAUNCHER
    chmod +x "$python_env/bin/componentize-py"
}
if [ ! -x "$python_env/bin/componentize-py" ]; then
    log "installing componentize-py into $python_env"
    install_componentize_py
fi

if [ -f "$stamp" ] && have_clang && [ -f "$(rust_threads_libdir)/libc.a" ]; then
    exec bash "$here/build-libcxx.sh" "$sysroot"
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_updated=0
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        "${sudo_cmd[@]}" apt-get update -qq
        apt_updated=1
    fi
}

if ! have_clang; then
    log "installing clang-19, lld-19 and wasm32 compiler-rt"
    apt_update
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
        clang-19 lld-19 libclang-rt-19-dev-wasm32 >/dev/null
fi

# bookworm-backports source, built from the machine's own Debian source entry
# so that no mirror is named here.
backports=/etc/apt/sources.list.d/weft-bookworm-backports.sources
if [ ! -f "$sysroot/include/pthread.h" ] && [ ! -f "$backports" ] &&
    ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    add_debian_source deb bookworm-backports "$backports"
    apt_updated=0
fi

if ! rustup target list --installed | grep -qx wasm32-wasip1-threads; then
    log "adding rustup target wasm32-wasip1-threads"
    rustup target add wasm32-wasip1-threads >/dev/null
fi

mkdir -p "$sysroot"
if [ ! -f "$sysroot/include/pthread.h" ]; then
    log "fetching wasi-libc headers from bookworm-backports"
    apt_update
    tmp=$(mktemp -d)
    chmod 755 "$tmp" # apt downloads as the _apt user
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt-get download -qq -t bookworm-backports wasi-libc >/dev/null)
    dpkg-deb -x "$tmp"/wasi-libc_*.deb "$tmp/x"
    rm -rf "$sysroot/include"
    cp -r "$tmp/x/usr/include/wasm32-wasi" "$sysroot/include"
fi

libdir=$sysroot/lib/wasm32-wasi-threads
mkdir -p "$libdir"
rust_libs=$(rust_threads_libdir)
for f in libc.a crt1-command.o crt1-reactor.o; do
    cp "$rust_libs/$f" "$libdir/$f"
done
# musl keeps libm, libpthread & co. inside libc.a; the driver still asks for
# them by name.
for lib in m pthread rt dl util xnet resolv crypt; do
    [ -f "$libdir/lib$lib.a" ] || llvm-ar-19 crs "$libdir/lib$lib.a"
done

touch "$stamp"
log "sysroot ready at $sysroot"

bash "$here/build-libcxx.sh" "$sysroot"
