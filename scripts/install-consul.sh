#!/bin/sh
# Install Consul 1.8.7 (Debian bullseye's package) as /usr/local/bin/consul.
#
# The system's apt configuration is never touched: apt runs against a private
# sources.list, lists and cache under a temporary directory, downloads the .deb
# and we only extract the binary from it (no dpkg -i, no postinst, no user).
#
# Idempotent: does nothing if `consul version` already reports the wanted
# version. Environment:
#   CONSUL_DEB     use this already-downloaded .deb instead of fetching one
#   CONSUL_PREFIX  install into $CONSUL_PREFIX/bin (default /usr/local)
#   DEBIAN_MIRROR  default http://deb.debian.org/debian
set -eu

WANT_VERSION=1.8.7
PREFIX=${CONSUL_PREFIX:-/usr/local}
TARGET="$PREFIX/bin/consul"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

installed_version() {
    # First line of `consul version` is "Consul v1.8.7" (Debian adds nothing).
    "$1" version 2>/dev/null | sed -n '1s/^Consul v\([0-9.]*\).*/\1/p'
}

for candidate in "$TARGET" "$(command -v consul 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
        && [ "$(installed_version "$candidate")" = "$WANT_VERSION" ]; then
        echo "consul $WANT_VERSION already installed at $candidate"
        exit 0
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/install-consul.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

if [ -n "${CONSUL_DEB:-}" ]; then
    DEB=$CONSUL_DEB
else
    if [ ! -r "$KEYRING" ]; then
        echo "missing $KEYRING (apt-get install debian-archive-keyring)" >&2
        exit 1
    fi
    mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/dl"
    printf 'deb [signed-by=%s] %s bullseye main\n' "$KEYRING" "$MIRROR" > "$WORK/sources.list"
    set -- \
        -o "Dir::Etc::sourcelist=$WORK/sources.list" \
        -o "Dir::Etc::sourceparts=-" \
        -o "Dir::State::Lists=$WORK/lists" \
        -o "Dir::Cache=$WORK/cache" \
        -o "APT::Sandbox::User=root" \
        -o "Debug::NoLocking=1"
    apt-get "$@" -qq update
    # The exact version pins us to bullseye's 1.8.7 (+dfsg1-2+bN rebuilds).
    version=$(apt-cache "$@" madison consul | awk -v v="$WANT_VERSION" \
        '$3 ~ "^" v "[+~-]" || $3 == v { print $3; exit }')
    if [ -z "$version" ]; then
        echo "consul $WANT_VERSION not found in bullseye" >&2
        exit 1
    fi
    (cd "$WORK/dl" && apt-get "$@" -qq download "consul=$version")
    DEB=$(ls "$WORK"/dl/consul_*.deb)
fi

dpkg-deb -x "$DEB" "$WORK/root"
BIN="$WORK/root/usr/bin/consul"
got=$(installed_version "$BIN")
if [ "$got" != "$WANT_VERSION" ]; then
    echo "unexpected consul version in $DEB: '$got'" >&2
    exit 1
fi
install -D -m 0755 "$BIN" "$TARGET"
echo "installed consul $WANT_VERSION at $TARGET"
