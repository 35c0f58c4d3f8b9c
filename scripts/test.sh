#!/usr/bin/env bash
# THE test command (README, .ci/run). As root on a fresh Debian machine:
# provision, start the test stack, build and install, push the test images,
# build the Go harness, run the whole pytest suite against the real stack.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -k stack -x     # extra arguments go to pytest
#
# Stops the stack at the end only if it started it (NOMAD_CTR_KEEP_STACK=1
# keeps it running). Exits with pytest's code; "no tests collected" (5) fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

started_at=$SECONDS
phase_started=$SECONDS
phase_name=""
summary=()

phase() {
    if [[ -n $phase_name ]]; then
        summary+=("$(printf '%-10s %4ds' "$phase_name" $((SECONDS - phase_started)))")
    fi
    phase_name=$1
    phase_started=$SECONDS
    printf '\n=== %s  [%s] %s  (t+%ds)\n' "$(date -u +%H:%M:%S)" "$1" "${2:-}" $((SECONDS - started_at))
}

print_summary() {
    [[ -n $phase_name ]] && summary+=("$(printf '%-10s %4ds' "$phase_name" $((SECONDS - phase_started)))")
    phase_name=""
    printf '\n=== %s  phase times:\n' "$(date -u +%H:%M:%S)"
    printf '      %s\n' "${summary[@]}"
    printf '      %-10s %4ds\n' total $((SECONDS - started_at))
}

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/test.sh: run as root (containerd, runc and network namespaces need it)" >&2
    exit 1
fi

# Go lives at /usr/local/go on this kind of machine; CI's PATH may lack it.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    export PATH=$PATH:/usr/local/go/bin
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

phase provision "Debian packages"
scripts/provision.sh

phase stack "containerd + registries (scripts/stack.sh)"
started_stack=0
if scripts/stack.sh status >/dev/null 2>&1; then
    echo "test stack already up: using it and leaving it running"
else
    started_stack=1
fi
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local rc=$?
    if ((started_stack)) && [[ ${NOMAD_CTR_KEEP_STACK:-0} != 1 ]]; then
        printf '\n=== %s  [teardown] scripts/stack.sh down\n' "$(date -u +%H:%M:%S)"
        scripts/stack.sh down || echo "WARNING: stack.sh down failed" >&2
    fi
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/stack.sh up
scripts/stack.sh status
# The env file holds the registry password: source it, never print it.
# shellcheck disable=SC1091
source /run/nomad-ctr-test/env

phase install "build and install the project"
if [[ -f Makefile ]] && grep -qE '^dev:' Makefile; then
    make dev
else
    python3 -m pip install -q -e '.[test]'
fi

phase images "build + push test images (tests/images/build.py)"
python3 tests/images/build.py

phase harness "Go test harness"
if [[ -f tests/harness/build.sh ]]; then
    bash tests/harness/build.sh
else
    echo "no tests/harness/build.sh yet: skipped"
fi

phase pytest "python3 -m pytest -ra tests $*"
rc=0
NOMAD_CTR_REQUIRE_STACK=1 python3 -m pytest -ra tests "$@" || rc=$?

print_summary
if ((rc == 5)); then
    echo "scripts/test.sh: pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit $rc
