#!/usr/bin/env bash
# Provision the Vagrant dev VM (Debian bookworm, see Vagrantfile). Idempotent: every
# step checks first, so `vagrant provision` can be re-run.
#   1. scripts/provision.sh (CI's): containerd, runc, CNI plugins, registry, tools
#   2. build tools, and Go from the official tarball (Debian's golang is too old);
#      the version is the one gobridge/go.mod asks for, checked against go.dev's sha256
#   3. Nomad from HashiCorp's apt repository
#   4. nomad_ctr in a venv (make dev), containerd-driver put in Nomad's plugin_dir
#      (make install-plugin)
#   5. a Nomad agent (server + client) using example/agent.hcl, started by systemd
set -euo pipefail

SRC=${NOMAD_CTR_SRC:-/vagrant}
VENV=/opt/nomad-ctr/venv
PLUGIN_DIR=/opt/nomad/plugins  # must match plugin_dir in example/agent.hcl
export DEBIAN_FRONTEND=noninteractive

log() { printf '%s vagrant-provision: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "vagrant-provision.sh: run as root (vagrant provisions as root)" >&2
    exit 1
fi
if [[ ! -f $SRC/pyproject.toml ]]; then
    echo "vagrant-provision.sh: no nomad_ctr tree at $SRC (set NOMAD_CTR_SRC)" >&2
    exit 1
fi

# ---- 1. the test stack's packages ---------------------------------------------------
log "running scripts/provision.sh"
bash "$SRC/scripts/provision.sh"

# ---- 2. build tools and Go ---------------------------------------------------------------
apt-get update -q
apt-get install -y -q --no-install-recommends \
    ca-certificates curl gnupg make gcc libc6-dev git python3 python3-venv python3-pip

go_version=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$SRC/gobridge/go.mod")
case $(dpkg --print-architecture) in
    amd64) go_arch=amd64 ;;
    arm64) go_arch=arm64 ;;
    *) echo "vagrant-provision.sh: no Go tarball for $(dpkg --print-architecture)" >&2; exit 1 ;;
esac
if [[ "$(/usr/local/go/bin/go env GOVERSION 2>/dev/null || true)" != "go$go_version" ]]; then
    tarball="go$go_version.linux-$go_arch.tar.gz"
    log "installing Go $go_version from https://go.dev/dl/$tarball"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL -o "$tmp/$tarball" "https://go.dev/dl/$tarball"
    want=$(curl -fsSL 'https://go.dev/dl/?mode=json&include=all' | python3 -c '
import json, sys
name = sys.argv[1]
for release in json.load(sys.stdin):
    for f in release["files"]:
        if f["filename"] == name:
            print(f["sha256"])
            raise SystemExit
' "$tarball")
    if [[ -z $want ]] || ! echo "$want  $tmp/$tarball" | sha256sum -c --quiet -; then
        echo "vagrant-provision.sh: checksum of $tarball does not match go.dev's ($want)" >&2
        exit 1
    fi
    rm -rf /usr/local/go
    tar -C /usr/local -xzf "$tmp/$tarball"
fi
ln -sf /usr/local/go/bin/go /usr/local/bin/go
ln -sf /usr/local/go/bin/gofmt /usr/local/bin/gofmt
log "$(go version)"

# ---- 3. Nomad ---------------------------------------------------------------------------
if ! command -v nomad >/dev/null 2>&1; then
    log "installing Nomad from apt.releases.hashicorp.com"
    keyring=/usr/share/keyrings/hashicorp-archive-keyring.gpg
    curl -fsSL https://apt.releases.hashicorp.com/gpg | gpg --dearmor --yes -o "$keyring"
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    echo "deb [signed-by=$keyring] https://apt.releases.hashicorp.com $codename main" \
        >/etc/apt/sources.list.d/hashicorp.list
    apt-get update -q
    apt-get install -y -q nomad
fi
log "$(nomad version | head -n1)"

# provision.sh keeps packaged services from starting (the test stack runs its own);
# Nomad's agent uses the system containerd on the default socket.
systemctl enable --now containerd

# ---- 4. nomad_ctr and the plugin ------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
    log "creating $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
fi
log "building gobridge and installing nomad_ctr (make dev)"
make -C "$SRC" dev PYTHON="$VENV/bin/python" GO=/usr/local/go/bin/go
# copies the venv's console script (replacing the symlink earlier provisions made)
make -C "$SRC" install-plugin PYTHON="$VENV/bin/python" PLUGIN_DIR="$PLUGIN_DIR"
ln -sf "$VENV/bin/nomad-ctr" /usr/local/bin/nomad-ctr

# ---- 5. the Nomad agent --------------------------------------------------------------------
install -d -m 0755 /etc/nomad.d
cat >/etc/nomad.d/nomad.hcl <<'HCL'
# Written by scripts/vagrant-provision.sh: a single-node dev agent. The client and
# the containerd-driver plugin are configured in containerd-driver.hcl.
bind_addr = "0.0.0.0"

server {
  enabled          = true
  bootstrap_expect = 1
}
HCL
install -m 0644 "$SRC/example/agent.hcl" /etc/nomad.d/containerd-driver.hcl
systemctl enable nomad
systemctl restart nomad

log "waiting for the Nomad agent"
for _ in $(seq 1 60); do
    if nomad node status -self >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
if nomad node status -self -verbose 2>/dev/null | grep -q 'containerd-driver'; then
    log "Nomad sees the containerd-driver plugin: nomad node status -self -verbose"
else
    log "WARNING: the agent does not list containerd-driver yet; see journalctl -u nomad"
fi
log "done. Try: vagrant ssh -c 'cd /vagrant && sudo scripts/test.sh'"
