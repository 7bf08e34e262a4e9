# Sourced by setup-toolchain.sh and build-libcxx.sh (which define `log`).
#
# add_debian_source TYPE SUITE FILE: writes an apt source entry FILE for
# bookworm's SUITE (`deb` or `deb-src`), made from the machine's own
# Debian source entry, so that no mirror is named here.
add_debian_source() {
    local type=$1 suite=$2 file=$3
    local src=/etc/apt/sources.list.d/debian.sources uris signed
    local sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    uris=$(awk '/^URIs:/ {print; exit}' "$src")
    signed=$(awk '/^Signed-By:/ {print; exit}' "$src")
    [ -n "$uris" ] || { log "cannot find a URIs: line in $src"; exit 1; }
    log "adding Debian $suite ($type) to apt's sources"
    printf 'Types: %s\n%s\nSuites: %s\nComponents: main\n%s\n' \
        "$type" "$uris" "$suite" "$signed" | "${sudo_cmd[@]}" tee "$file" >/dev/null
}
