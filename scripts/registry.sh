#!/usr/bin/env bash
# Runs a throwaway local OCI registry (CNCF distribution, the Debian
# `docker-registry` package) for nixpush's demo and tests, without systemd
# and without auth, listening on 127.0.0.1 only.
#
#   scripts/registry.sh start|stop|status [PORT]      (PORT defaults to 5000)
#
# Everything lives in ${NIXPUSH_REGISTRY_DIR:-~/.local/share/nixpush/demo-registry}:
#   config.yml     generated registry configuration
#   registry.pid   pid of the running registry
#   registry.log   its output, one access-log line per HTTP request
#                  (emptied on each start)
#   storage/       the registry's blobs and manifests
# One registry per directory: use another NIXPUSH_REGISTRY_DIR for a second one.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|status [PORT]" >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
cmd=$1
port=${2:-5000}
[[ $port =~ ^[0-9]+$ ]] || usage

host=127.0.0.1
url="http://$host:$port/v2/"
dir=${NIXPUSH_REGISTRY_DIR:-$HOME/.local/share/nixpush/demo-registry}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # the registry needs an absolute storage path
config=$dir/config.yml
pidfile=$dir/registry.pid
logfile=$dir/registry.log

# True when an unauthenticated registry API answers on the port.
registry_answers() {
  curl -sf --max-time 2 -o /dev/null "$url"
}

# True when anything at all accepts TCP connections on the port.
port_in_use() {
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# Prints the pid from the pid file if that process is still a docker-registry.
running_pid() {
  local pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry ]] || return 1
  echo "$pid"
}

write_config() {
  cat >"$config" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $host:$port
EOF
}

start() {
  local pid
  if registry_answers; then
    if pid=$(running_pid); then
      echo "registry already running at $url (pid $pid, log $logfile)"
    else
      echo "a registry already answers at $url; leaving it as it is"
    fi
    return 0
  fi
  if port_in_use; then
    if curl -s --max-time 2 -o /dev/null -D - "$url" | grep -qi '^docker-distribution-api-version:'; then
      echo "error: port $port is held by a registry that requires authentication" >&2
      echo "(the Debian docker-registry service? stop it with" >&2
      echo " '/etc/init.d/docker-registry stop') or choose another port" >&2
    else
      echo "error: port $port is in use by something that is not an OCI registry;" >&2
      echo "free it or choose another port: $0 start PORT" >&2
    fi
    return 1
  fi
  if pid=$(running_pid); then
    echo "error: the registry from $dir (pid $pid) runs on another port;" >&2
    echo "stop it first ($0 stop) or set NIXPUSH_REGISTRY_DIR to another directory" >&2
    return 1
  fi

  command -v docker-registry >/dev/null 2>&1 || {
    echo "error: docker-registry not found; run scripts/setup.sh (make setup)" >&2
    return 1
  }

  mkdir -p "$dir/storage"
  write_config
  : >"$logfile"
  # setsid keeps the registry alive when the calling terminal or make exits.
  setsid docker-registry serve "$config" >>"$logfile" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pidfile"

  local i
  for ((i = 0; i < 50; i++)); do # ~10 s
    if registry_answers; then
      echo "registry ready at $url (pid $pid, log $logfile)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done

  echo "error: registry did not answer at $url; last lines of $logfile:" >&2
  tail -n 20 "$logfile" >&2 || true
  kill "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  return 1
}

stop() {
  local pid i
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    echo "no registry from $dir is running"
    return 0
  fi
  kill "$pid"
  for ((i = 0; i < 50; i++)); do # ~10 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  echo "registry stopped (pid $pid)"
}

status() {
  local pid
  if pid=$(running_pid); then
    if registry_answers; then
      echo "running at $url (pid $pid, log $logfile)"
      return 0
    fi
    echo "registry process $pid from $dir runs but does not answer at $url"
    return 1
  fi
  if registry_answers; then
    echo "a registry not started from $dir answers at $url"
    return 0
  fi
  echo "not running"
  return 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
