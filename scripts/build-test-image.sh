#!/usr/bin/env bash
# Build the Molecule test-host image localhost/strongroom-systemd:13 from Debian's
# archive (no image registry is reachable here) and the network the scenarios use.
# Usage (root): scripts/build-test-image.sh      Rebuilds only when this script changed.
#
# Why each odd setting (DESIGN.md §6): crun refuses this cgroup v1/v2 hybrid host, so
# runc; the host's hard open-files limit (20000) cannot be raised, so podman's default
# ulimits are lowered; the network is --internal (no outside access), so everything the
# hosts run is baked in here or shipped from the controller (wheelhouse, consul binary).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/strongroom-systemd:13
NETWORK=strongroom-molecule
SUBNET=10.89.61.0/24
STATE=${STRONGROOM_TEST_HOSTS:-${XDG_CACHE_HOME:-$HOME/.cache}/strongroom-test-hosts}
mkdir -p "$STATE"
export DEBIAN_FRONTEND=noninteractive

need=()
for tool in podman:podman runc:runc mmdebstrap:mmdebstrap ssh:openssh-client; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
    apt-get update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need[@]}"
fi

cat > "$STATE/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$STATE/containers.conf"

[[ -f "$STATE/id_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -f "$STATE/id_ed25519"

stamp=$(sha256sum "$0" "$STATE/id_ed25519.pub" | sha256sum | cut -c1-16)
if ! podman image exists "$IMAGE" || [[ "$(cat "$STATE/image.stamp" 2>/dev/null)" != "$stamp" ]]; then
    rootfs="$STATE/rootfs"
    rm -rf "$rootfs"
    # python3-venv: Strongroom is installed into a virtualenv from the controller's wheelhouse.
    # softhsm2 + opensc: the pkcs11 seal of scenario hsm (roles/softhsm); the hosts cannot apt-get.
    mmdebstrap --variant=minbase --quiet \
        --include=python3,python3-venv,softhsm2,opensc,systemd,systemd-sysv,dbus,openssh-server,iproute2,iputils-ping,sudo,procps,nftables,ca-certificates,curl \
        bookworm "$rootfs" http://deb.debian.org/debian
    install -d -m700 "$rootfs/root/.ssh"
    install -m600 "$STATE/id_ed25519.pub" "$rootfs/root/.ssh/authorized_keys"
    # Host keys are made at each container's first boot, so no two hosts share one.
    rm -f "$rootfs"/etc/ssh/ssh_host_*
    mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
    printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
        > "$rootfs/etc/systemd/system/ssh.service.d/keygen.conf"
    : > "$rootfs/etc/machine-id"
    echo localhost > "$rootfs/etc/hostname"
    rm -f "$rootfs/etc/resolv.conf"; : > "$rootfs/etc/resolv.conf"
    podman image rm -f "$IMAGE" >/dev/null 2>&1 || true
    tar -C "$rootfs" -c . | podman import --quiet --change CMD=/sbin/init \
        --change STOPSIGNAL=SIGRTMIN+3 - "$IMAGE" >/dev/null
    rm -rf "$rootfs"
    echo "$stamp" > "$STATE/image.stamp"
fi
podman network exists "$NETWORK" || podman network create --internal --subnet "$SUBNET" "$NETWORK" >/dev/null
echo "image $IMAGE and network $NETWORK ready; CONTAINERS_CONF=$CONTAINERS_CONF"
