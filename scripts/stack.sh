#!/usr/bin/env bash
# The test stack: our own containerd plus two docker-registry instances, all
# bound to this machine only. See docs/test-stack.md.
#
#   stack.sh up       start what is not running yet, wait until it serves
#   stack.sh down     stop what `up` started (and the containers of that containerd)
#   stack.sh status   one line per component; exit 0 only if all three serve
#   stack.sh env      print the `export` lines of the env file (contains the password)
#   stack.sh reset    down, then delete all state (images, blobs, password)
#
# Everything is idempotent. Processes are started with setsid so that stopping
# them never signals anything else (Debian's unit uses KillMode=process too).
set -euo pipefail

RUN=/run/nomad-ctr-test
LIB=/var/lib/nomad-ctr-test
LOG=/var/log/nomad-ctr-test

CTR_SOCK=$RUN/containerd.sock
CTR_ROOT=$LIB/containerd
CTR_STATE=$RUN/containerd-state
PUBLIC_ADDR=127.0.0.1:5000
PRIVATE_ADDR=127.0.0.1:5001
REG_USER=nomadctr
PASSWORD_FILE=$RUN/registry-password
ENV_FILE=$RUN/env

# How long to wait for a component to serve, in tenths of a second.
WAIT_TENTHS=${NOMAD_CTR_STACK_WAIT_TENTHS:-300}

log() { printf '%s stack: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (containerd and runc need it)"
}

# --- pid files -------------------------------------------------------------

# Print the pid recorded for component $1 if that process is still alive and is
# still the program we started (guards against pid reuse after a reboot or a
# killed session: /run survives here).
live_pid() {
    local name=$1 prog=$2 pidfile=$RUN/$1.pid pid exe cmd
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ ${exe##*/} == "$prog" ]] || return 1
    # ...and runs with our config (not, say, the system containerd).
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ " $cmd" == *" $RUN/"* ]] || return 1
    echo "$pid"
}

# Start "$@" detached in its own session, log to $LOG/$name.log, record pid.
start_detached() {
    local name=$1; shift
    # A background job of a non-interactive shell is not a process-group
    # leader, so setsid execs in place and $! is the daemon's own pid.
    setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

# SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# --- readiness probes --------------------------------------------------------

ctr_serves() {
    [[ -S $CTR_SOCK ]] && ctr --address "$CTR_SOCK" --connect-timeout 2s version >/dev/null 2>&1
}

http_code() {
    curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://$1/v2/" 2>/dev/null || true
}
public_serves() { [[ $(http_code "$PUBLIC_ADDR") == 200 ]]; }
# Anonymous access must be refused: that proves auth is on.
private_serves() { [[ $(http_code "$PRIVATE_ADDR") == 401 ]]; }

wait_for() {
    local what=$1 probe=$2 name=$3 i
    for ((i = 0; i < WAIT_TENTHS; i++)); do
        $probe && return 0
        # kill -0, not live_pid: right after the fork the child may not have
        # exec'd the daemon yet, so its exe is still setsid.
        if ! kill -0 "$(<"$RUN/$name.pid")" 2>/dev/null; then
            tail -n 20 "$LOG/$name.log" >&2 || true
            die "$what exited during startup (log: $LOG/$name.log)"
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG/$name.log" >&2 || true
    die "$what did not serve within $((WAIT_TENTHS / 10)) s (log: $LOG/$name.log)"
}

port_busy() { ss -Htln "sport = :${1##*:}" 2>/dev/null | grep -q .; }

# --- containerd --------------------------------------------------------------

write_containerd_config() {
    cat >"$RUN/containerd.toml" <<EOF
# Written by scripts/stack.sh; regenerated on every \`up\`.
version = 2
root = "$CTR_ROOT"
state = "$CTR_STATE"
# No Kubernetes here: the CRI plugin would only want CNI config of its own.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTR_SOCK"

[ttrpc]
  address = "$CTR_SOCK.ttrpc"

[debug]
  address = "$RUN/containerd-debug.sock"
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$LIB/opt"
EOF
}

containerd_up() {
    local pid
    if pid=$(live_pid containerd containerd); then
        ctr_serves || wait_for containerd ctr_serves containerd
        log "containerd already running (pid $pid)"
        return
    fi
    if ctr_serves; then
        die "a containerd not started by stack.sh already serves $CTR_SOCK; stop it first"
    fi
    mkdir -p "$CTR_ROOT" "$CTR_STATE" "$LIB/opt"
    rm -f "$CTR_SOCK" "$CTR_SOCK.ttrpc" "$RUN/containerd-debug.sock"
    write_containerd_config
    start_detached containerd containerd --config "$RUN/containerd.toml"
    wait_for containerd ctr_serves containerd
    log "containerd serving at $CTR_SOCK (pid $(<"$RUN/containerd.pid"))"
}

# --- registries --------------------------------------------------------------

ensure_password() {
    if [[ ! -s $PASSWORD_FILE ]]; then
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$PASSWORD_FILE")
        log "generated a new registry password into $PASSWORD_FILE"
    fi
    chmod 0600 "$PASSWORD_FILE"
    # bcrypt (-B), password read from stdin (-i) so it never shows in ps.
    (umask 077 && htpasswd -niB "$REG_USER" <"$PASSWORD_FILE" >"$RUN/htpasswd.tmp")
    mv -f "$RUN/htpasswd.tmp" "$RUN/htpasswd"
}

# $1 name, $2 addr, $3 "auth" or ""
write_registry_config() {
    local name=$1 addr=$2 auth=$3 secret
    secret=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    {
        cat <<EOF
# Written by scripts/stack.sh; regenerated on every \`up\`.
version: 0.1
log:
  level: info
  fields:
    service: $name
storage:
  filesystem:
    rootdirectory: $LIB/$name
  delete:
    enabled: true
http:
  addr: $addr
  secret: $secret
EOF
        if [[ -n $auth ]]; then
            cat <<EOF
auth:
  htpasswd:
    realm: nomad-ctr-test
    path: $RUN/htpasswd
EOF
        fi
    } >"$RUN/$name.yml"
    chmod 0600 "$RUN/$name.yml"
}

registry_up() {
    local name=$1 addr=$2 auth=$3 probe=$4 pid
    if pid=$(live_pid "$name" docker-registry); then
        $probe || wait_for "$name" "$probe" "$name"
        log "$name already running (pid $pid) on $addr"
        return
    fi
    port_busy "$addr" && die "port ${addr##*:} is taken by a process not started by stack.sh (see: ss -ltnp)"
    mkdir -p "$LIB/$name"
    write_registry_config "$name" "$addr" "$auth"
    start_detached "$name" docker-registry serve "$RUN/$name.yml"
    wait_for "$name" "$probe" "$name"
    log "$name serving on $addr (pid $(<"$RUN/$name.pid"))"
}

write_env() {
    local tmp=$ENV_FILE.tmp
    (
        umask 077
        cat >"$tmp" <<EOF
export CONTAINERD_ADDRESS=$CTR_SOCK
export NOMAD_CTR_REGISTRY=$PUBLIC_ADDR
export NOMAD_CTR_PRIVATE_REGISTRY=$PRIVATE_ADDR
export NOMAD_CTR_REGISTRY_USER=$REG_USER
export NOMAD_CTR_REGISTRY_PASSWORD=$(<"$PASSWORD_FILE")
EOF
    )
    mv -f "$tmp" "$ENV_FILE"
}

cmd_up() {
    need_root
    for bin in containerd ctr runc containerd-shim-runc-v2 docker-registry htpasswd curl ss; do
        command -v "$bin" >/dev/null || die "$bin not found: run scripts/provision.sh"
    done
    mkdir -p "$RUN" "$LIB" "$LOG"
    chmod 0700 "$RUN"
    ensure_password
    containerd_up
    registry_up registry-public "$PUBLIC_ADDR" "" public_serves
    registry_up registry-private "$PRIVATE_ADDR" auth private_serves
    write_env
    log "up; env file: $ENV_FILE"
}

# --- down --------------------------------------------------------------------

# Pids of the shims that belong to our containerd (their -address is our socket).
our_shims() {
    local p cmd
    for p in /proc/[0-9]*; do
        [[ $(readlink "$p/exe" 2>/dev/null) == */containerd-shim-runc-v2 ]] || continue
        cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
        [[ " $cmd " == *" -address $CTR_SOCK "* ]] && echo "${p#/proc/}"
    done
    return 0
}

# All descendants of pid $1 (the shim is a subreaper: container processes hang
# below it).
descendants() {
    local kid
    # shellcheck disable=SC2013  # pids, one word each
    for kid in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$kid"
        descendants "$kid"
    done
}

# Kill and delete every task of our containerd, the clean way, while it still
# serves. Containers, images and snapshots stay (they are state, not processes).
kill_tasks() {
    local ns task c=(ctr --address "$CTR_SOCK")
    for ns in $("${c[@]}" namespaces list -q 2>/dev/null); do
        for task in $("${c[@]}" -n "$ns" tasks list -q 2>/dev/null); do
            "${c[@]}" -n "$ns" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
        done
        for task in $("${c[@]}" -n "$ns" tasks list -q 2>/dev/null); do
            "${c[@]}" -n "$ns" tasks delete -f "$task" >/dev/null 2>&1 || true
        done
    done
}

unmount_leftovers() {
    # Deepest first; only mounts inside our own directories.
    local mp
    awk '{print $5}' /proc/self/mountinfo |
        { grep -E "^($RUN|$LIB)/" || true; } | sort -r |
        while read -r mp; do
            umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
        done
}

cmd_down() {
    need_root
    local pid shim name regs=()
    # The registries need no ordering: signal them now, reap them below.
    for name in registry-public registry-private; do
        if pid=$(live_pid "$name" docker-registry); then
            kill -TERM "$pid" 2>/dev/null || true
            regs+=("$name:$pid")
        fi
    done
    if pid=$(live_pid containerd containerd); then
        ctr_serves && kill_tasks
        stop_pid "$pid"
        log "containerd stopped (pid $pid)"
    fi
    rm -f "$RUN/containerd.pid"
    for shim in $(our_shims); do
        log "killing leftover shim $shim and its processes"
        for pid in $(descendants "$shim") "$shim"; do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done
    [[ -d $RUN || -d $LIB ]] && unmount_leftovers
    for name in "${regs[@]}"; do
        stop_pid "${name#*:}"
        log "${name%%:*} stopped (pid ${name#*:})"
    done
    rm -f "$RUN/registry-public.pid" "$RUN/registry-private.pid"
    log "down"
}

cmd_reset() {
    cmd_down
    unmount_leftovers
    rm -rf "$LIB" "$RUN"
    log "reset: removed $LIB and $RUN (logs kept in $LOG)"
}

# --- status / env ------------------------------------------------------------

# One status line; returns 1 unless the component serves.
status_line() {
    local name=$1 prog=$2 addr=$3 probe=$4 pid
    if ! pid=$(live_pid "$name" "$prog"); then
        printf '%-17s %-8s %-6s %s\n' "$name" down - "$addr"
        return 1
    fi
    if $probe; then
        printf '%-17s %-8s %-6s %s\n' "$name" serving "$pid" "$addr"
    else
        printf '%-17s %-8s %-6s %s\n' "$name" starting "$pid" "$addr"
        return 1
    fi
}

cmd_status() {
    local ok=0
    status_line containerd containerd "$CTR_SOCK" ctr_serves || ok=1
    status_line registry-public docker-registry "$PUBLIC_ADDR" public_serves || ok=1
    status_line registry-private docker-registry "$PRIVATE_ADDR" private_serves || ok=1
    return $ok
}

cmd_env() {
    [[ -r $ENV_FILE ]] || die "no $ENV_FILE: run scripts/stack.sh up"
    cat "$ENV_FILE"
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    *) echo "usage: $0 up|down|status|env|reset" >&2; exit 2 ;;
esac
