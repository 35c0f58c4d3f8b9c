#!/usr/bin/env bash
# The README's first command: on a fresh Debian machine, as root, bring up the local
# stack (containerd + registry, scripts/stack.sh), build and install nomad_ctr, push the
# hermetic test images, then run example/hello.nomad through the containerd-driver
# plugin the way a Nomad client would (nomad-ctr run-job), and stop it after a while.
#
#   scripts/demo.sh                 # hello.nomad for 12 seconds
#   scripts/demo.sh example/entrypoint.nomad
#   DEMO_SECONDS=30 scripts/demo.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
job=${1:-example/hello.nomad}
seconds=${DEMO_SECONDS:-12}

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/demo.sh: run as root (containerd, runc and network namespaces need it)" >&2
    exit 1
fi
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    export PATH=$PATH:/usr/local/go/bin
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "==> installing Debian packages (containerd, runc, CNI plugins, registry, busybox)"
scripts/provision.sh
echo "==> starting the local stack"
scripts/stack.sh up
# shellcheck disable=SC1091
source /run/nomad-ctr-test/env
echo "==> building gobridge and installing nomad_ctr"
make dev >/dev/null
echo "==> pushing the example images to 127.0.0.1:5000"
python3 tests/images/build.py

# The example agent config, pointed at the stack's containerd.
agent=$(mktemp --suffix=.hcl)
trap 'rm -f "$agent"' EXIT
sed "s|# address   = \"/run/containerd/containerd.sock\"   (default)|address = \"$CONTAINERD_ADDRESS\"|" \
    example/agent.hcl >"$agent"
grep -q "address = \"$CONTAINERD_ADDRESS\"" "$agent" || {
    echo "scripts/demo.sh: could not point $agent at $CONTAINERD_ADDRESS" >&2
    exit 1
}

echo "==> nomad-ctr run-job $job (stops after ${seconds}s)"
code=0
nomad-ctr run-job "$job" --agent "$agent" --stop-after "$seconds" || code=$?
# hello.nomad traps SIGTERM and exits 0; another job given here may end with its
# signal's code (143 SIGTERM, 137 SIGKILL), which is the demo working too. Anything
# else is passed on.
case $code in
    0 | 137 | 143) echo "==> demo finished (task exit code $code)" ;;
    *) exit "$code" ;;
esac
