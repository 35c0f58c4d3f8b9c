#!/usr/bin/env bash
# Build tests/harness/nomad-harness, the Go program that plays Nomad's client side
# against the containerd-driver plugin. Regenerates the Go gRPC stubs under pb/
# when proto/*.proto changed (stamp = sha256 of the protos + generator versions).
# Idempotent; fast when nothing changed (go build's own cache does the rest).
# `build.sh --test` also runs the harness's own Go tests (go test ./...).
set -euo pipefail

run_tests=0
for arg in "$@"; do
    case $arg in
        --test) run_tests=1 ;;
        *) echo "usage: build.sh [--test]" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
gopath=$(/usr/local/go/bin/go env GOPATH 2>/dev/null || echo "$HOME/go")
export PATH="$PATH:/usr/local/go/bin:$gopath/bin"

MOD=github.com/nomad-ctr/nomad_ctr/tests/harness
PROTOC_GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC=google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

log() { printf 'harness build: %s\n' "$*" >&2; }

# Our protos name go_package paths under the repo root module; the harness is its
# own module, so map every file into pb/<pkg> with M options.
declare -A PKG=(
    [attribute.proto]=structs
    [recoverable_error.proto]=structs
    [hclspec.proto]=hclspec
    [base.proto]=base
    [driver.proto]=drivers
    [grpc_broker.proto]=plugin
    [grpc_controller.proto]=plugin
    [grpc_stdio.proto]=plugin
)

stamp_now() {
    {
        for f in "${!PKG[@]}"; do printf '%s=%s\n' "$f" "${PKG[$f]}"; done | sort
        sha256sum "$root"/proto/*.proto | sed "s#$root/##"
        echo "$PROTOC_GEN_GO $PROTOC_GEN_GO_GRPC"
    } | sha256sum | cut -d' ' -f1
}

ensure_tools() {
    if ! command -v protoc >/dev/null 2>&1; then
        log "installing protobuf-compiler (Debian)"
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends protobuf-compiler >/dev/null
    fi
    command -v protoc-gen-go >/dev/null 2>&1 || go install "$PROTOC_GEN_GO"
    command -v protoc-gen-go-grpc >/dev/null 2>&1 || go install "$PROTOC_GEN_GO_GRPC"
}

generate() {
    local mopts=() f
    for f in "${!PKG[@]}"; do
        [[ -e $root/proto/$f ]] || { log "missing proto/$f"; exit 1; }
        mopts+=("--go_opt=M$f=$MOD/pb/${PKG[$f]}" "--go-grpc_opt=M$f=$MOD/pb/${PKG[$f]}")
    done
    local out
    out=$(mktemp -d)
    trap 'rm -rf "$out"' RETURN
    protoc -I "$root/proto" \
        --go_out="$out" --go_opt=module=$MOD \
        --go-grpc_out="$out" --go-grpc_opt=module=$MOD \
        "${mopts[@]}" "${!PKG[@]}"
    rm -rf "$here/pb"
    mv "$out/pb" "$here/pb"
}

want=$(stamp_now)
if [[ ! -f $here/pb/.stamp || $(cat "$here/pb/.stamp") != "$want" ]]; then
    log "generating Go stubs from proto/"
    ensure_tools
    generate
    echo "$want" >"$here/pb/.stamp"
fi

cd "$here"
go build -o nomad-harness ./cmd/nomad-harness
log "built $here/nomad-harness"
if ((run_tests)); then
    go test -count=1 ./...
fi
