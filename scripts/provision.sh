#!/usr/bin/env bash
# Install, from Debian's packages, what the test stack needs. Idempotent: runs
# `apt-get update` and `apt-get install` only when something is missing, so a
# warm machine pays nothing. Needs root; does not start any service (no systemd
# as PID 1 here) -- scripts/stack.sh starts our own instances.
set -euo pipefail

log() { printf '%s provision: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

updated=0
apt_update_once() {
    ((updated)) && return 0
    apt-get update -q
    updated=1
}

if [[ $(id -u) -ne 0 ]]; then
    echo "provision.sh: must run as root (it installs Debian packages)" >&2
    exit 1
fi

# package -> a file it installs; the file proves the package is usable.
declare -A NEED=(
    [containerd]=/usr/bin/containerd
    [runc]=/usr/sbin/runc
    [containernetworking-plugins]=/usr/lib/cni/bridge
    [docker-registry]=/usr/bin/docker-registry
    [busybox-static]=/bin/busybox
    [skopeo]=/usr/bin/skopeo
    [apache2-utils]=/usr/bin/htpasswd
    [iptables]=/usr/sbin/iptables
    [iproute2]=/usr/sbin/ip
    [curl]=/usr/bin/curl
    [shellcheck]=/usr/bin/shellcheck  # the tests lint our shell scripts with it
)

missing=()
for pkg in "${!NEED[@]}"; do
    # busybox (dynamic) and busybox-static both ship /bin/busybox: insist on
    # the static one, the image builder copies it into images.
    if [[ $pkg == busybox-static ]]; then
        dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
        continue
    fi
    [[ -e ${NEED[$pkg]} ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_update_once
    # policy-rc.d keeps the packages' init scripts from starting system
    # services (a system containerd/registry on the default socket/port 5000
    # would collide with our test stack).
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created_policy=1
    fi
    rc=0
    apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
    ((created_policy)) && rm -f "$policy"
    ((rc == 0)) || { log "apt-get install failed ($rc)"; exit "$rc"; }
else
    log "all Debian packages present"
fi

# Go is not from Debian: it lives at /usr/local/go on this kind of machine.
if ! command -v go >/dev/null 2>&1 && [[ ! -x /usr/local/go/bin/go ]]; then
    log "WARNING: no Go toolchain (expected /usr/local/go/bin/go); the gobridge build will fail"
else
    log "go: $( (command -v go || echo /usr/local/go/bin/go) | head -1)"
fi

# Python: pip must exist; project deps come from `make dev` / pip later.
if ! python3 -m pip --version >/dev/null 2>&1; then
    log "python3 has no pip: installing python3-pip"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip
fi
log "done"
