# shellcheck shell=bash
# Helpers shared by the scripts in this folder. Source it; it defines functions and a few
# variables and runs nothing else.

WXBRIDGE_CACHE="${WXBRIDGE_CACHE:-${HOME:-/root}/.cache/wxbridge}"

# Messages go to stderr so that stdout stays machine-readable (`eval "$(scripts/dynamodb-local start)"`).
log() { printf '%s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# A free TCP port on 127.0.0.1, chosen by the kernel (python3), or by probing (bash only).
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
        return
    fi
    local port i
    for i in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        # Nothing answers on it: free (as far as a connect can tell).
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free loopback port found"
}

# The HTTP status of a GET (or "000" when nothing answers). Uses curl, else python3.
http_status() {
    local url=$1
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true
    else
        python3 - "$url" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
    fi
}

# wait_http URL SECONDS PID LOGFILE [ok-statuses-regex]
# Waits until URL answers (any HTTP status, or one matching the regex). Fails loudly, with
# the tail of LOGFILE, when the process PID dies or the time runs out.
wait_http() {
    local url=$1 secs=$2 pid=$3 logfile=$4 want=${5:-'^[1-5][0-9][0-9]$'}
    local deadline=$((SECONDS + secs)) code
    while :; do
        code=$(http_status "$url")
        if [[ $code =~ $want ]]; then
            return 0
        fi
        if ! running "$pid"; then
            log "error: the process $pid serving $url exited before answering; its log ($logfile):"
            tail -n 60 "$logfile" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "error: $url did not answer (last status $code) within ${secs}s; log ($logfile):"
            tail -n 60 "$logfile" >&2 || true
            return 1
        fi
        sleep 0.3
    done
}

# The pids of a process's descendants (children first found, then theirs), read from /proc.
descendants() {
    local f s ppid pid found=()
    for f in /proc/[0-9]*/stat; do
        s=$(cat "$f" 2>/dev/null) || continue
        s=${s##*) }              # the fields after "pid (comm) "
        read -r _ ppid _ <<<"$s"
        if [[ $ppid == "$1" ]]; then
            pid=${f#/proc/}
            found+=("${pid%/stat}")
        fi
    done
    for pid in "${found[@]}"; do
        echo "$pid"
        descendants "$pid"
    done
}

# Whether a process runs (a zombie, exited but not yet reaped, does not).
running() {
    local s
    kill -0 "$1" 2>/dev/null || return 1
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    [[ ${s:0:1} != Z ]]
}

# Stops a process we started and everything it started: TERM, then KILL after a grace period.
# Quiet if it is gone already.
stop_pid() {
    local pid=$1 grace=${2:-10} i p alive
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    local tree=("$pid")
    mapfile -t -O 1 tree < <(descendants "$pid")
    kill -TERM "${tree[@]}" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        alive=0
        for p in "${tree[@]}"; do
            running "$p" && { alive=1; break; }
        done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${tree[@]}"; do
        running "$p" && kill -KILL "$p" 2>/dev/null
    done
    wait "$pid" 2>/dev/null || true
}

# pip install into the Python that runs the scripts (tolerates a Debian externally-managed Python).
pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

# apt-get install, with one `apt-get update` first.
apt_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
