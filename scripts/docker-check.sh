#!/usr/bin/env bash
# docker-check.sh: build StoryBot's Docker image and check it end to end, on a machine
# that reaches PyPI and Debian's mirrors but no image registry (no Docker Hub).
#
#   scripts/docker-check.sh            # from anywhere; needs root on a fresh machine
#
# Steps (each is skipped when already done, so a second run takes about a minute):
#   1. apt-get installs what is missing: docker.io, and mmdebstrap / docker-compose when needed.
#   2. Starts a private dockerd (no bridge, no iptables) on its own socket, data root and
#      pidfile under $STATE, unless one already answers there. Stops it at the end only if
#      this run started it (by its pid).
#   3. Builds $BASE_IMAGE, a stand-in for python:3.11-slim, with mmdebstrap (Debian bookworm
#      minbase + python3, using the host's apt mirror and extra CA certificates), if missing.
#   4. docker build --network host --build-arg PYTHON_IMAGE=$BASE_IMAGE -t $IMAGE .
#   5. Checks, each printing one PASS/FAIL line:
#        ask      `docker run --network none IMAGE ask ...` answers offline, with no token
#        user     the container runs as uid 10001 and /data belongs to it
#        slash    the bot connects to tests/e2e/fake_discord.py and answers an injected /ask
#        persist  an entry added with /kb add (the bot's form) is answered after `docker
#                 restart` and after the container is recreated on the same volume. The
#                 entry is added with the image's CLI (`add`): /kb add opens a modal, and the
#                 fake's control API has no way to submit one.
#        health   HEALTHCHECK turns healthy while connected, unhealthy once the fake is gone
#        stop     `docker stop` (SIGTERM through --init) ends the bot within a few seconds
#        compose  compose.yaml validates and `docker-compose up` runs the bot against the fake
#        cluster  compose.cluster.yaml: PostgreSQL and two bots splitting the shards, against a fake
#                 with a guild per shard (the database image: a local stand-in without Docker Hub)
#      then the image size added over the base image, and exits 1 if any check failed.
#
# Environment (defaults in brackets):
#   STORYBOT_DOCKER_STATE   daemon root, logs, lock [/tmp/storybot-docker]
#   STORYBOT_DOCKER_HOST    daemon socket [unix://$STORYBOT_DOCKER_STATE/docker.sock]
#   BASE_IMAGE              base image [local/python:3.11-slim-bookworm]; a name not starting
#                           with local/ (e.g. python:3.11-slim where a registry is reachable)
#                           is pulled instead of built
#   REBUILD_BASE=1          rebuild the stand-in base image
#   IMAGE                   tag of the project image [storybot:check]
#   KEEP_DAEMON=1           leave a dockerd started by this run running (faster re-runs)
#   CHECK_PYTHON            python (with aiohttp) that runs the fake Discord on the host
#                           [.venv/bin/python if it has aiohttp; else the fake runs in a
#                           container of the built image, on the host network]
#   HEALTH_MAX_AGE          STORYBOT_HEALTH_MAX_AGE for the checked containers [6]
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR   [the first ones in this machine's apt sources]
#   SKIP_CHECKS             space-separated check names to skip, e.g. "compose"
#
# The project's own script; nothing here depends on files outside the repository.
# shellcheck disable=SC2317  # functions called indirectly (traps, run_check "check_$name")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${STORYBOT_DOCKER_STATE:-/tmp/storybot-docker}
export DOCKER_HOST=${STORYBOT_DOCKER_HOST:-unix://$STATE/docker.sock}
BASE_IMAGE=${BASE_IMAGE:-local/python:3.11-slim-bookworm}
IMAGE=${IMAGE:-storybot:check}
REBUILD_BASE=${REBUILD_BASE:-0}
KEEP_DAEMON=${KEEP_DAEMON:-0}
SKIP_CHECKS=" ${SKIP_CHECKS:-} "
DEBIAN_SUITE=bookworm   # Python 3.11, matching requires-python and python:3.11-slim
RUN_ID="sbcheck$$"
LABEL="storybot-check"
QUESTION="How far did they push the trolley?"
BOT_UID=10001

mkdir -p "$STATE"
# One run at a time per state directory: runs share the daemon, the base image and the logs.
exec 9>"$STATE/lock"
flock 9

log() { printf '[docker-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }

declare -a RESULTS=() TIMINGS=()
FAILED=0
timing() { TIMINGS+=("$(printf '%-22s %7ss' "$1" "$2")"); log "$1: $2s"; }
result() {  # result NAME PASS|FAIL|SKIP DETAIL
  local line; line=$(printf '%-4s %-8s %s' "$2" "$1" "$3")
  RESULTS+=("$line"); echo "$line"
  [ "$2" != FAIL ] || FAILED=1
}

# ------------------------------------------------------------------ cleanup
DAEMON_PID=""      # set only when this run started dockerd
FAKE_PID=""        # fake Discord on the host, started by this run
FAKE_CONTAINER=""  # or the fake Discord inside a container
cleanup() {
  local rc=$?
  set +e
  if [ -n "$FAKE_PID" ] && kill -0 "$FAKE_PID" 2>/dev/null; then kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null; fi
  if docker_answers; then
    if [ -d "$STATE/compose-$RUN_ID" ]; then
      (cd "$STATE/compose-$RUN_ID" && timeout 60 docker-compose -p "$RUN_ID" down -v --remove-orphans >/dev/null 2>&1)
      rm -rf "$STATE/compose-$RUN_ID"
    fi
    remove_labelled "$RUN_ID"
  fi
  # Per-run files (fake and compose logs): kept only when something failed.
  if [ -n "${RUN_DIR:-}" ] && [ -d "$RUN_DIR" ]; then
    if [ "$rc" = 0 ]; then rm -rf "$RUN_DIR"; else log "logs of this run: $RUN_DIR"; fi
  fi
  if [ -n "$DAEMON_PID" ] && [ "$KEEP_DAEMON" != 1 ]; then
    log "stopping the dockerd this run started (pid $DAEMON_PID)"
    kill "$DAEMON_PID" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
      log "WARNING: dockerd pid $DAEMON_PID still running"
    else
      # dockerd leaves its default network namespace mounted; release it with the daemon.
      umount "$STATE/exec/netns/default" 2>/dev/null
    fi
  elif [ -n "$DAEMON_PID" ]; then
    log "KEEP_DAEMON=1: dockerd pid $DAEMON_PID keeps running at $DOCKER_HOST (stop: kill $DAEMON_PID)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Containers and volumes of this run (or, with "all", of earlier runs that were killed).
remove_labelled() {
  local filter="label=$LABEL" ids=()
  [ "$1" = all ] || filter="label=$LABEL=$1"
  mapfile -t ids < <(docker ps -aq --filter "$filter" 2>/dev/null || true)
  [ ${#ids[@]} -eq 0 ] || docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
  mapfile -t ids < <(docker volume ls -q --filter "$filter" 2>/dev/null || true)
  [ ${#ids[@]} -eq 0 ] || docker volume rm -f "${ids[@]}" >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------ 1. packages
APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing $*; installing it needs root"
  log "apt-get install $* (log: $STATE/apt.log)"
  # Keep package scripts from starting services (a stock dockerd would add a docker0
  # bridge and iptables rules). Add a policy-rc.d only if there is none; remove only ours.
  local policy=/usr/sbin/policy-rc.d added=0 rc=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; added=1; fi
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -q >>"$STATE/apt.log" 2>&1 || rc=$?
    APT_UPDATED=1
  fi
  [ "$rc" != 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
    >>"$STATE/apt.log" 2>&1 || rc=$?
  [ "$added" = 0 ] || rm -f "$policy"
  [ "$rc" = 0 ] || { tail -20 "$STATE/apt.log" >&2; die "apt-get install $* failed"; }
}

t0=$(now)
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || [[ "$SKIP_CHECKS" == *" compose "* ]] || need+=(docker-compose)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
# Debian's client matches Debian's daemon; a newer client elsewhere on PATH works too.
if [ -x /usr/bin/docker ]; then DOCKER_CLI=/usr/bin/docker; else DOCKER_CLI=$(command -v docker) || die "no docker client"; fi
docker() { "$DOCKER_CLI" "$@"; }
timing "packages" "$(secs "$t0")"

# ------------------------------------------------------------------ 2. daemon
docker_answers() { timeout 10 "${DOCKER_CLI:-docker}" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

mount_cgroups_if_missing() {
  # dockerd needs cgroups; some minimal VMs boot without them. Mount them the way
  # Debian's cgroupfs-mount does.
  grep -qE '^[^ ]+ /sys/fs/cgroup[/ ]' /proc/mounts && return 0
  [ -e /proc/cgroups ] && [ -d /sys/fs/cgroup ] || return 0
  log "no cgroup hierarchy mounted; mounting cgroup v1 controllers under /sys/fs/cgroup"
  mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o uid=0,gid=0,mode=0755 cgroup /sys/fs/cgroup
  local sys
  for sys in $(awk '!/^#/ { if ($4 == 1) print $1 }' /proc/cgroups); do
    mkdir -p "/sys/fs/cgroup/$sys"
    mountpoint -q "/sys/fs/cgroup/$sys" || mount -n -t cgroup -o "$sys" cgroup "/sys/fs/cgroup/$sys" \
      || rmdir "/sys/fs/cgroup/$sys" || true
  done
}

ensure_dockerd() {
  if docker_answers; then
    log "reusing dockerd at $DOCKER_HOST (server $(docker version --format '{{.Server.Version}}'))"
    return 0
  fi
  case "$DOCKER_HOST" in unix://*) ;; *) die "no daemon at $DOCKER_HOST; only unix:// sockets are started here" ;; esac
  [ "$(id -u)" = 0 ] || die "starting dockerd needs root"
  local sock="${DOCKER_HOST#unix://}" pidfile="$STATE/docker.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null \
      && grep -q dockerd "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
    die "dockerd pid $(cat "$pidfile") owns $STATE but does not answer at $DOCKER_HOST (see $STATE/dockerd.log)"
  fi
  mount_cgroups_if_missing
  mkdir -p "$(dirname "$sock")"
  # No bridge and no iptables: nothing on this machine's network changes. Containers use
  # --network host or none. Own pidfile, data root and exec root: another dockerd on this
  # machine (at /var/run/docker.sock) is left alone.
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$pidfile" \
    -H "$DOCKER_HOST" >>"$STATE/dockerd.log" 2>&1 </dev/null 9>&- &
  DAEMON_PID=$!
  for _ in $(seq 1 120); do
    docker_answers && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$STATE/dockerd.log" >&2; DAEMON_PID=""; die "dockerd exited"; }
    sleep 0.5
  done
  docker_answers || { tail -20 "$STATE/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
  log "started dockerd pid $DAEMON_PID at $DOCKER_HOST (log: $STATE/dockerd.log)"
}

t0=$(now)
ensure_dockerd
# Leftovers of an earlier run that was killed before its cleanup (we hold the lock).
remove_labelled all
timing "daemon" "$(secs "$t0")"

# ------------------------------------------------------------------ 3. base image
apt_uri() {  # first mirror URI in this machine's apt sources matching $1
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
    | { grep -oE 'https?://[^ ]+' || true; } | { grep -E "$1" || true; } | sed -n 1p
}

build_base_image() {
  local mirror="${DEBIAN_MIRROR:-$(apt_uri '/debian/?$')}"
  local security="${DEBIAN_SECURITY_MIRROR:-$(apt_uri '/debian-security/?$')}"
  { [ -n "$mirror" ] && [ -n "$security" ]; } || die "set DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR (none found in apt sources)"
  command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
  [ "$(id -u)" = 0 ] || die "building the base image needs root (mmdebstrap --mode=root)"
  local tar="$STATE/rootfs-$DEBIAN_SUITE.tar" pyver="$STATE/python-version"
  local hooks=()
  # The host's extra CA certificates (e.g. a TLS-inspecting proxy's), so pip inside
  # `docker build` trusts what the host trusts.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    hooks+=(--customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"')
  fi
  log "building $BASE_IMAGE: mmdebstrap $DEBIAN_SUITE minbase + python3 (log: $STATE/mmdebstrap.log)"
  rm -f "$tar" "$pyver"
  # shellcheck disable=SC2016  # $1 is expanded by mmdebstrap's hook shell
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,netbase \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "${hooks[@]}" \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    --customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf"' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    --customize-hook='for n in python python3 pip pip3; do ln -sf /usr/bin/$n "$1/usr/local/bin/$n"; done' \
    --customize-hook="chroot \"\$1\" python3 -c 'import platform; print(platform.python_version())' > '$pyver'" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/root/.cache' \
    "$DEBIAN_SUITE" "$tar" \
    "deb $mirror $DEBIAN_SUITE main" \
    "deb $mirror $DEBIAN_SUITE-updates main" \
    "deb $security $DEBIAN_SUITE-security main" \
    >"$STATE/mmdebstrap.log" 2>&1 || { tail -20 "$STATE/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$(cat "$pyver")" \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    --message "stand-in for python:3.11-slim ($DEBIAN_SUITE minbase via mmdebstrap)" \
    "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
  log "base image $BASE_IMAGE: Python $(cat "$pyver"), $(mb "$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")") MB"
}

t0=$(now)
if [ "$REBUILD_BASE" != 1 ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
elif [[ "$BASE_IMAGE" == local/* ]]; then
  build_base_image
else
  docker pull "$BASE_IMAGE" >/dev/null || die "cannot pull $BASE_IMAGE"
fi
timing "base image" "$(secs "$t0")"

# ------------------------------------------------------------------ 4. project image
t0=$(now)
log "docker build -t $IMAGE $ROOT (log: $STATE/build.log)"
# The legacy builder: the Dockerfile needs no BuildKit feature, and BuildKit's frontend
# images and buildx are not reachable here.
if ! DOCKER_BUILDKIT=0 docker build --network host --build-arg PYTHON_IMAGE="$BASE_IMAGE" \
    -t "$IMAGE" "$ROOT" >"$STATE/build.log" 2>&1; then
  tail -30 "$STATE/build.log" >&2
  result build FAIL "docker build failed (log: $STATE/build.log)"
  exit 1
fi
timing "project image build" "$(secs "$t0")"
# Earlier builds of $IMAGE (and a replaced base image) are left untagged: drop them, so
# the private data root does not grow run after run. The build cache stays.
docker image prune -f >/dev/null 2>&1 || true
IMAGE_BYTES=$(docker image inspect -f '{{.Size}}' "$IMAGE")
BASE_BYTES=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
result build PASS "$IMAGE: $(mb "$IMAGE_BYTES") MB, $(mb $((IMAGE_BYTES - BASE_BYTES))) MB over $BASE_IMAGE ($(mb "$BASE_BYTES") MB)"

# ------------------------------------------------------------------ 5. checks
T_CHECKS=$(now)
run_check() {  # run_check NAME: runs check_NAME unless it is in SKIP_CHECKS
  if [[ "$SKIP_CHECKS" == *" $1 "* ]]; then result "$1" SKIP "in SKIP_CHECKS"; return 0; fi
  "check_$1" || result "$1" FAIL "check_$1 stopped early (exit $?)"
}

# --- ask: offline, no token. --network none proves it needs no network at all.
check_ask() {
  local out rc=0
  out=$(timeout 60 docker run --rm --network none --label "$LABEL=$RUN_ID" "$IMAGE" ask "$QUESTION" 2>&1) || rc=$?
  if [ "$rc" = 0 ] && printf '%s' "$out" | grep -qiE 'mile|kilomet'; then
    result ask PASS "answered offline: $(printf '%s' "$out" | grep -iE -m1 'mile|kilomet' | cut -c1-100)"
  else
    result ask FAIL "exit $rc; output: $(printf '%s' "$out" | tail -5 | tr '\n' ' ' | cut -c1-300)"
  fi
}

# --- user: uid 10001, a real USER line, /data owned by it.
check_user() {
  local uid cfg owner
  uid=$(docker run --rm --network none --label "$LABEL=$RUN_ID" --entrypoint id "$IMAGE" -u 2>&1 || true)
  cfg=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
  owner=$(docker run --rm --network none --label "$LABEL=$RUN_ID" --entrypoint stat "$IMAGE" -c %u /data 2>&1 || true)
  if [ "$uid" = "$BOT_UID" ] && [ "${cfg%%:*}" = "$BOT_UID" ] && [ "$owner" = "$BOT_UID" ]; then
    result user PASS "id -u=$uid, USER $cfg, /data owner uid $owner"
  else
    result user FAIL "id -u=$uid, USER '$cfg', /data owner uid $owner (want $BOT_UID)"
  fi
}

run_check ask
run_check user
timing "checks ask+user" "$(secs "$T_CHECKS")"

# ------------------------------------------------------------------ the fake Discord
# tests/e2e/fake_discord.py plays Discord's REST API and gateway on 127.0.0.1, with a
# control API on the same port. fakectl.py (written below) drives that control API.
FAKE_SCRIPT="$ROOT/tests/e2e/fake_discord.py"
RUN_DIR="$STATE/$RUN_ID"
mkdir -p "$RUN_DIR"
chmod 0777 "$RUN_DIR"   # the fake may run as uid 10001 inside the image
FAKECTL="$RUN_DIR/fakectl.py"
cat >"$FAKECTL" <<'PY'
"""Drive the fake Discord's control API: fakectl.py BASE_URL COMMAND ARGS..."""
import json
import re
import sys
import time
import urllib.request

base, cmd, args = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3:]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw.strip() else None


def state():
    try:
        return call("GET", "/_fake/state") or {}
    except OSError:
        return {}


if cmd == "state":
    print(json.dumps(state()))
elif cmd == "wait-identified":  # MIN_IDENTIFY_COUNT TIMEOUT: prints the identify count
    want, deadline = int(args[0]), time.monotonic() + float(args[1])
    while time.monotonic() < deadline:
        st = state()
        if st.get("identified") and int(st.get("identify_count", 0)) >= want:
            print(st.get("identify_count"))
            sys.exit(0)
        time.sleep(0.5)
    print(json.dumps(state()))
    sys.exit(1)
elif cmd == "slash":  # NAME OPTIONS_JSON [ROLES_JSON [CHANNEL_ID]]: prints the interaction id
    body = {"name": args[0], "options": json.loads(args[1]), "user_id": "555000000000000001",
            "roles": json.loads(args[2]) if len(args) > 2 else [], "permissions": "0",
            "channel_id": args[3] if len(args) > 3 else None}
    print(call("POST", "/_fake/slash", body)["interaction_id"])
elif cmd == "wait-reply":  # INTERACTION_ID REGEX TIMEOUT: prints the matching reply text
    # The callback is POST /interactions/ID/TOKEN/callback; followups and edits of the
    # original response go to /webhooks/APP_ID/TOKEN/...
    iid, pattern, deadline = args[0], re.compile(args[1], re.I), time.monotonic() + float(args[2])
    mine = []
    while time.monotonic() < deadline:
        reqs = call("GET", "/_fake/requests") or []
        tokens = {r["path"].split("/")[3] for r in reqs
                  if r.get("path", "").startswith(f"/interactions/{iid}/") and r["path"].count("/") >= 3}
        mine = [r for r in reqs if r.get("path", "").startswith(f"/interactions/{iid}/")
                or any(t and f"/{t}" in r.get("path", "") and r["path"].startswith("/webhooks/")
                       for t in tokens)]
        for r in mine:
            text = json.dumps(r.get("json"), ensure_ascii=False)
            if int(r.get("status") or 0) < 300 and pattern.search(text):
                print(f"{r['method']} {r['path'].split('/')[1]} {r.get('status')}: {text[:300]}")
                sys.exit(0)
        time.sleep(0.5)
    print("no matching reply; requests for this interaction: "
          + json.dumps([{k: r.get(k) for k in ("method", "path", "status", "json")} for r in mine],
                       ensure_ascii=False)[:800])
    sys.exit(1)
elif cmd == "kb-add":  # ROLES_JSON FIELDS_JSON TIMEOUT [CHANNEL_ID]: /kb add, submit its form, print the reply
    roles, fields, deadline = json.loads(args[0]), json.loads(args[1]), time.monotonic() + float(args[2])
    who = {"user_id": "555000000000000001", "roles": roles, "permissions": "0",
           "channel_id": args[3] if len(args) > 3 else None}
    iid = call("POST", "/_fake/slash", {"name": "kb add", "options": None, **who})["interaction_id"]

    def reply_to(interaction_id, final=False):
        reqs = call("GET", "/_fake/requests") or []
        tokens = {r["path"].split("/")[3] for r in reqs if r.get("path", "").startswith(f"/interactions/{interaction_id}/")}
        for r in reqs:
            path = r.get("path", "")
            mine = path.startswith(f"/interactions/{interaction_id}/") or (
                path.startswith("/webhooks/") and any(t and f"/{t}" in path for t in tokens))
            body = r.get("json") or {}
            if mine and int(r.get("status") or 0) < 300 and (not final or (body.get("data") or body).get("content")):
                return body
        return None

    form = None
    while form is None and time.monotonic() < deadline:
        form = reply_to(iid)
        time.sleep(0.3)
    if not form or form.get("type") != 9:
        print(f"/kb add did not open its form: {json.dumps(form)[:300]}")
        sys.exit(1)
    sub = call("POST", "/_fake/modal", {"custom_id": form["data"]["custom_id"], "fields": fields, **who})["interaction_id"]
    done = None
    while done is None and time.monotonic() < deadline:
        done = reply_to(sub, final=True)  # the reply, or (after "thinking…") its followup
        time.sleep(0.3)
    print(json.dumps(done, ensure_ascii=False)[:300])
    sys.exit(0 if done and str((done.get("data") or done).get("content", "")).startswith("Added") else 1)
else:
    sys.exit(f"unknown command {cmd}")
PY

FAKE_URL=""
FAKE_HOW=""
start_fake() {  # start_fake [FAKE ARGS...]
  [ -f "$FAKE_SCRIPT" ] || { log "no $FAKE_SCRIPT"; return 1; }
  local port_file="$RUN_DIR/fake.port" py="${CHECK_PYTHON:-}"
  rm -f "$port_file"
  if [ -z "$py" ] && [ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" -c 'import aiohttp' 2>/dev/null; then
    py="$ROOT/.venv/bin/python"
  fi
  if [ -n "$py" ]; then
    FAKE_HOW="host: $py"
    "$py" "$FAKE_SCRIPT" --port 0 --port-file "$port_file" "$@" >"$RUN_DIR/fake.log" 2>&1 9>&- &
    FAKE_PID=$!
  else
    # No host python with aiohttp: run it with the image's python (which has discord.py's
    # aiohttp), still on the host's 127.0.0.1 through --network host.
    FAKE_HOW="container on the host network"
    FAKE_CONTAINER="$RUN_ID-fake"
    docker run -d --name "$FAKE_CONTAINER" --label "$LABEL=$RUN_ID" --network host \
      -v "$ROOT/tests:/check/tests:ro" -v "$RUN_DIR:/check/run" --entrypoint python "$IMAGE" \
      /check/tests/e2e/fake_discord.py --port 0 --port-file /check/run/fake.port "$@" >/dev/null
  fi
  for _ in $(seq 1 60); do
    [ -s "$port_file" ] && break
    sleep 0.5
  done
  [ -s "$port_file" ] || { log "the fake Discord wrote no port file; its log:"; fake_log | tail -20 >&2; return 1; }
  FAKE_PORT=$(tr -dc '0-9' <"$port_file")
  FAKE_URL="http://127.0.0.1:$FAKE_PORT"
  log "fake Discord at $FAKE_URL ($FAKE_HOW)"
}
fake_log() {
  if [ -n "$FAKE_CONTAINER" ]; then docker logs "$FAKE_CONTAINER" 2>&1; else cat "$RUN_DIR/fake.log" 2>/dev/null; fi
}
stop_fake() {
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; FAKE_PID=""; fi
  if [ -n "$FAKE_CONTAINER" ]; then docker rm -f "$FAKE_CONTAINER" >/dev/null 2>&1 || true; FAKE_CONTAINER=""; fi
}
fakectl() { python3 "$FAKECTL" "$FAKE_URL" "$@"; }

# Short health timings so the health check takes seconds, not minutes. While connected
# the bot touches /data/heartbeat every HEALTH_MAX_AGE/3 seconds (at most every 15 s).
HEALTH_MAX_AGE=${HEALTH_MAX_AGE:-6}
FAKE_GUILD_ID=222222222222222222          # fake_discord.py's defaults
FAKE_CURATOR_ROLE_ID=444444444444444444
HEALTH_ARGS=(--health-interval 2s --health-timeout 10s --health-start-period 2s --health-retries 2)
bot_env() {
  printf '%s\n' "DISCORD_TOKEN=fake-token" \
    "STORYBOT_API_BASE=$FAKE_URL/api/v10" \
    "STORYBOT_GATEWAY_URL=ws://127.0.0.1:$FAKE_PORT/gateway" \
    "STORYBOT_HEALTH_MAX_AGE=$HEALTH_MAX_AGE" \
    "STORYBOT_LOG_LEVEL=DEBUG" \
    "STORYBOT_GUILD_ID=$FAKE_GUILD_ID" \
    "STORYBOT_CURATOR_ROLE_ID=$FAKE_CURATOR_ROLE_ID"
}
start_bot() {  # start_bot NAME VOLUME
  bot_env >"$RUN_DIR/bot.env"
  docker run -d --name "$1" --label "$LABEL=$RUN_ID" --network host --init \
    --env-file "$RUN_DIR/bot.env" "${HEALTH_ARGS[@]}" -v "$2:/data" "$IMAGE" run >/dev/null
}
bot_logs() { docker logs --tail 15 "$1" 2>&1 | sed 's/^/    | /' >&2; }
health_of() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || echo gone; }
wait_health() {  # wait_health CONTAINER STATUS TIMEOUT
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(health_of "$1")" = "$2" ] && return 0
    sleep 1
  done
  return 1
}
# wait_connected CONTAINER MIN_IDENTIFY_COUNT: the bot identified to the fake
wait_connected() {
  local out="" deadline=$(( $(date +%s) + 60 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if out=$(fakectl wait-identified "$2" 2); then IDENTIFY_COUNT=$out; return 0; fi
    [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || break
  done
  log "the bot did not identify (fake state: $out; container: $(docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}}' "$1" 2>/dev/null))"
  bot_logs "$1"
  return 1
}
# ask_via_fake QUESTION REGEX: injects /ask, prints the reply that matches
ask_via_fake() {
  local iid
  iid=$(fakectl slash ask "$(python3 -c 'import json,sys; print(json.dumps([{"name": "question", "type": 3, "value": sys.argv[1]}]))' "$1")") \
    || { echo "POST /_fake/slash failed"; return 1; }
  fakectl wait-reply "$iid" "$2" 30
}

BOT="$RUN_ID-bot"
VOLUME="$RUN_ID-data"
IDENTIFY_COUNT=0
HEALTHY_DETAIL=""

check_slash() {
  local reply t
  docker volume create --label "$LABEL=$RUN_ID" "$VOLUME" >/dev/null
  t=$(now)
  start_bot "$BOT" "$VOLUME"
  wait_connected "$BOT" 1 || { result slash FAIL "bot did not connect to the fake Discord"; return 0; }
  log "bot identified after $(secs "$t")s"
  if reply=$(ask_via_fake "$QUESTION" 'mile|kilomet'); then
    result slash PASS "/ask answered through the interaction callback: ${reply:0:120}"
  else
    result slash FAIL "$reply"; bot_logs "$BOT"
  fi
  t=$(now)
  if wait_health "$BOT" healthy 40; then
    HEALTHY_DETAIL="healthy $(secs "$t")s after connecting"
  else
    HEALTHY_DETAIL="not healthy within 40 s (status $(health_of "$BOT"))"
    docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$BOT" 2>/dev/null | tail -3 >&2 || true
  fi
}

PERSIST_ID="docker-check-persist"
PERSIST_Q="Docker volume check: from which far-eastern city did the group fly?"
PERSIST_A="Vladivostok (answer kept on the volume across restarts: $RUN_ID)"
PERSIST_S="The Interfax news agency reported on Friday morning that the group later took a flight to Moscow from the far-eastern city of Vladivostok."
check_persist() {
  local out reply before
  # A curator adds the entry through the bot itself: /kb add, then its form (a modal).
  local fields
  fields=$(python3 -c 'import json,sys; print(json.dumps({"id": sys.argv[1], "question": sys.argv[2], "answer": sys.argv[3], "source": sys.argv[4], "alternates": ""}))' \
    "$PERSIST_ID" "$PERSIST_Q" "$PERSIST_A" "$PERSIST_S")
  if ! out=$(fakectl kb-add '["Curators"]' "$fields" 30); then
    result persist FAIL "/kb add was not saved: $out"; bot_logs "$BOT"; return 0
  fi
  docker run --rm --network none --label "$LABEL=$RUN_ID" -v "$VOLUME:/data" --entrypoint grep "$IMAGE" \
    -rqF "$RUN_ID" /data/knowledge || { result persist FAIL "entry not found under /data/knowledge after /kb add"; return 0; }
  # 1) docker restart: same container, same volume.
  before=$IDENTIFY_COUNT
  docker restart -t 20 "$BOT" >/dev/null
  wait_connected "$BOT" $((before + 1)) || { result persist FAIL "bot did not reconnect after docker restart"; return 0; }
  reply=$(ask_via_fake "$PERSIST_Q" "$RUN_ID") || { result persist FAIL "after docker restart: $reply"; bot_logs "$BOT"; return 0; }
  # 2) a new container on the same volume (what an image upgrade does).
  before=$IDENTIFY_COUNT
  docker rm -f "$BOT" >/dev/null
  start_bot "$BOT" "$VOLUME"
  wait_connected "$BOT" $((before + 1)) || { result persist FAIL "recreated bot did not connect"; return 0; }
  reply=$(ask_via_fake "$PERSIST_Q" "$RUN_ID") || { result persist FAIL "after recreating the container: $reply"; bot_logs "$BOT"; return 0; }
  # 3) the seed entries are still there too (the volume was not re-seeded over).
  reply=$(ask_via_fake "$QUESTION" 'mile|kilomet') || { result persist FAIL "seed entry lost: $reply"; return 0; }
  result persist PASS "/kb add entry answered after docker restart and after recreating the container"
}

check_compose() {
  local dir="$STATE/compose-$RUN_ID" cid before t reply init
  command -v docker-compose >/dev/null 2>&1 || { result compose FAIL "docker-compose not installed"; return 0; }
  mkdir -p "$dir"
  cp "$ROOT/compose.yaml" "$dir/compose.yaml"
  # .env the way an operator makes it: a copy of .env.example with values filled in.
  bot_env >"$RUN_DIR/bot.env"
  {
    if [ -f "$ROOT/.env.example" ]; then
      grep -v -E "^($(cut -d= -f1 "$RUN_DIR/bot.env" | paste -sd'|'))=" "$ROOT/.env.example" || true
    fi
    cat "$RUN_DIR/bot.env"
  } >"$dir/.env"
  (cd "$dir" && docker-compose -f compose.yaml config -q) 2>"$RUN_DIR/compose.log" \
    || { result compose FAIL "compose.yaml does not validate: $(tail -2 "$RUN_DIR/compose.log")"; return 0; }
  # Only what this daemon needs: no bridge network here, and short health timings.
  cat >"$dir/compose.check.yaml" <<YAML
services:
  storybot:
    network_mode: host
    labels:
      $LABEL: "$RUN_ID"
    healthcheck:
      interval: 2s
      start_period: 2s
      retries: 2
YAML
  docker tag "$IMAGE" storybot:latest
  before=$IDENTIFY_COUNT
  t=$(now)
  (cd "$dir" && timeout 120 docker-compose -p "$RUN_ID" -f compose.yaml -f compose.check.yaml up -d --no-build) \
    >>"$RUN_DIR/compose.log" 2>&1 || { result compose FAIL "docker-compose up failed: $(tail -3 "$RUN_DIR/compose.log" | tr '\n' ' ')"; return 0; }
  cid=$(cd "$dir" && docker-compose -p "$RUN_ID" -f compose.yaml -f compose.check.yaml ps -q storybot)
  init=$(docker inspect -f '{{.HostConfig.Init}} {{.HostConfig.RestartPolicy.Name}} {{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}' "$cid")
  if ! wait_connected "$cid" $((before + 1)); then
    result compose FAIL "compose service did not connect"
  elif ! reply=$(ask_via_fake "$QUESTION" 'mile|kilomet'); then
    result compose FAIL "compose service: $reply"
  elif ! wait_health "$cid" healthy 40; then
    result compose FAIL "compose service not healthy (status $(health_of "$cid"))"
  elif [[ "$init" != "true unless-stopped ${RUN_ID}_storybot-data:/data" ]]; then
    result compose FAIL "unexpected init/restart/volume: $init"
  elif ! docker exec "$cid" test -f /data/heartbeat -a -f /data/knowledge/story.yaml; then
    result compose FAIL "no /data/heartbeat or /data/knowledge/story.yaml in the volume: $(docker exec "$cid" find /data -maxdepth 2 | tr '\n' ' ')"
  else
    result compose PASS "up in $(secs "$t")s, answered /ask, healthy; init, restart, volume: $init"
  fi
  (cd "$dir" && timeout 60 docker-compose -p "$RUN_ID" -f compose.yaml -f compose.check.yaml down -v) >>"$RUN_DIR/compose.log" 2>&1 || true
  rm -rf "$dir"
}

# cluster: compose.cluster.yaml as an operator runs it (PostgreSQL and two bot containers on shards
# 0 and 1 of 2), against a fake Discord with a guild on each shard. Without Docker Hub the
# database is a stand-in for the postgres image, built from Debian's postgresql package
# (docker/postgres-standin.Dockerfile).
POSTGRES_IMAGE=${POSTGRES_IMAGE:-local/postgres:15-bookworm}
check_cluster() {
  local dir="$STATE/cluster-$RUN_ID" project="${RUN_ID}c" pgport pw b0 b1 t reply seconds
  command -v docker-compose >/dev/null 2>&1 || { result cluster FAIL "docker-compose not installed"; return 0; }
  if ! docker image inspect "$POSTGRES_IMAGE" >/dev/null 2>&1; then
    if [[ "$POSTGRES_IMAGE" != local/* ]]; then
      docker pull "$POSTGRES_IMAGE" >/dev/null || { result cluster FAIL "cannot pull $POSTGRES_IMAGE"; return 0; }
    else
      log "building $POSTGRES_IMAGE from Debian's postgresql (log: $STATE/postgres-build.log)"
      DOCKER_BUILDKIT=0 docker build --network host --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$POSTGRES_IMAGE" \
        -f "$ROOT/docker/postgres-standin.Dockerfile" "$ROOT/docker" >"$STATE/postgres-build.log" 2>&1 \
        || { result cluster FAIL "building $POSTGRES_IMAGE failed: $(tail -3 "$STATE/postgres-build.log" | tr '\n' ' ')"; return 0; }
    fi
  fi
  mkdir -p "$dir"
  cp "$ROOT/compose.cluster.yaml" "$dir/compose.cluster.yaml"
  pgport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pw=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  {
    bot_env | grep -v '^STORYBOT_GUILD_ID='   # global commands: the two guilds see them
    echo "STORYBOT_RELOAD_INTERVAL=1"
    echo "POSTGRES_PASSWORD=$pw"
  } >"$dir/.env"
  # Only what this daemon needs: host networking (no bridge here), so the database listens on a
  # free port of 127.0.0.1 and the bots are told so; short health timings.
  cat >"$dir/compose.check.yaml" <<YAML
services:
  postgres:
    image: $POSTGRES_IMAGE
    network_mode: host
    command: ["postgres", "-c", "listen_addresses=127.0.0.1", "-p", "$pgport"]
    labels: {$LABEL: "$RUN_ID"}
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "$pgport", "-U", "storybot", "-d", "storybot"]
      interval: 1s
  storybot-0: &bot
    network_mode: host
    labels: {$LABEL: "$RUN_ID"}
    environment:
      STORYBOT_DATABASE_URL: postgresql://storybot:$pw@127.0.0.1:$pgport/storybot
    healthcheck: {interval: 2s, start_period: 2s, retries: 2}
  storybot-1: *bot
YAML
  local compose=(docker-compose -p "$project" -f compose.cluster.yaml -f compose.check.yaml)
  (cd "$dir" && "${compose[@]}" config -q) 2>"$RUN_DIR/cluster.log" \
    || { result cluster FAIL "compose.cluster.yaml does not validate: $(tail -2 "$RUN_DIR/cluster.log")"; return 0; }
  docker tag "$IMAGE" storybot:latest
  t=$(now)
  if ! (cd "$dir" && timeout 180 "${compose[@]}" up -d --no-build) >>"$RUN_DIR/cluster.log" 2>&1; then
    result cluster FAIL "docker-compose up failed: $(tail -3 "$RUN_DIR/cluster.log" | tr '\n' ' ')"
  elif ! fakectl wait-identified 2 90 >/dev/null; then
    result cluster FAIL "the two bots did not both connect: $(fakectl state)"
  else
    b0=$(cd "$dir" && "${compose[@]}" ps -q storybot-0); b1=$(cd "$dir" && "${compose[@]}" ps -q storybot-1)
    local ask_a ask_b new_q='What did the diplomats ride after the train?'
    ask_a=$(python3 -c 'import json,sys; print(json.dumps([{"name": "question", "type": 3, "value": sys.argv[1]}]))' "$QUESTION")
    if ! reply=$(fakectl wait-reply "$(fakectl slash ask "$ask_a" '[]' "$FAKE_CHANNEL_A")" 'mile|kilomet' 30) \
       || ! reply=$(fakectl wait-reply "$(fakectl slash ask "$ask_a" '[]' "$FAKE_CHANNEL_B")" 'mile|kilomet' 30); then
      result cluster FAIL "a guild was not answered: $reply"; bot_logs "$b0"; bot_logs "$b1"
    elif ! reply=$(fakectl kb-add '["Curators"]' "$(python3 -c 'import json,sys; print(json.dumps({"question": sys.argv[1], "answer": "A bus, for two hours.", "source": "The group of eight people took a 32-hour train ride, followed by two hours on a bus.", "alternates": "", "id": "bus-after-the-train"}))' "$new_q")" 40 "$FAKE_CHANNEL_B"); then
      result cluster FAIL "/kb add on shard 0's bot: $reply"; bot_logs "$b0"
    else
      local added; added=$(now) seconds=""
      ask_b=$(python3 -c 'import json,sys; print(json.dumps([{"name": "question", "type": 3, "value": sys.argv[1]}]))' "$new_q")
      # Ask shard 1's bot until its reply (whatever it is) carries the new answer.
      local iid
      for _ in $(seq 1 60); do
        iid=$(fakectl slash ask "$ask_b" '[]' "$FAKE_CHANNEL_A") || continue
        fakectl wait-reply "$iid" '"type"' 10 >/dev/null || continue   # its reply is in
        if fakectl wait-reply "$iid" 'A bus, for two hours' 0.3 >/dev/null; then seconds=$(secs "$added"); break; fi
        sleep 0.2
      done
      if [ -z "$seconds" ]; then
        result cluster FAIL "the entry added through shard 0's bot was never answered by shard 1's"; bot_logs "$b1"
      elif ! wait_health "$b0" healthy 40 || ! wait_health "$b1" healthy 40; then
        result cluster FAIL "bots not healthy: $(health_of "$b0") / $(health_of "$b1")"
      else
        result cluster PASS "PostgreSQL + bots on shards 0 and 1 up in $(secs "$t")s; each guild answered by its shard; /kb add on shard 0 answered on shard 1 after ${seconds}s; both healthy"
      fi
    fi
  fi
  (cd "$dir" && timeout 60 "${compose[@]}" down -v) >>"$RUN_DIR/cluster.log" 2>&1 || true
  rm -rf "$dir"
}

check_health() {
  local t
  [ -n "$HEALTHY_DETAIL" ] || { result health FAIL "the bot never ran"; return 0; }
  [[ "$HEALTHY_DETAIL" == healthy* ]] || { result health FAIL "$HEALTHY_DETAIL"; return 0; }
  wait_health "$BOT" healthy 30 || { result health FAIL "not healthy before stopping the fake (status $(health_of "$BOT"))"; return 0; }
  t=$(now)
  stop_fake
  if wait_health "$BOT" unhealthy $((HEALTH_MAX_AGE + 40)); then
    result health PASS "$HEALTHY_DETAIL; unhealthy $(secs "$t")s after the fake Discord stopped (max age ${HEALTH_MAX_AGE}s)"
  else
    result health FAIL "$HEALTHY_DETAIL; still $(health_of "$BOT") $(secs "$t")s after the fake stopped"
  fi
}

check_stop() {
  local t took code
  [ "$(docker inspect -f '{{.State.Running}}' "$BOT" 2>/dev/null)" = true ] \
    || { result stop FAIL "no running bot container to stop"; return 0; }
  t=$(now)
  docker stop -t 20 "$BOT" >/dev/null
  took=$(secs "$t")
  code=$(docker inspect -f '{{.State.ExitCode}}' "$BOT")
  if awk -v s="$took" 'BEGIN { exit !(s < 10) }'; then
    result stop PASS "docker stop took ${took}s (SIGTERM reached the bot), exit code $code"
  else
    result stop FAIL "docker stop took ${took}s: SIGTERM was ignored and the bot was killed"
  fi
}

T_E2E=$(now)
if start_fake; then
  run_check slash
  if [ -n "$HEALTHY_DETAIL" ]; then
    run_check persist
    run_check compose
  else
    result persist FAIL "the bot never connected"
    result compose FAIL "the bot never connected"
  fi
  run_check health
  run_check stop
else
  for c in slash persist compose health stop; do result "$c" FAIL "the fake Discord did not start ($FAKE_SCRIPT)"; done
fi
stop_fake
# The cluster check has a fake of its own, with a guild on each of two shards.
FAKE_CHANNEL_A=333333333333333333 FAKE_CHANNEL_B=333333333333333334   # fake_discord.py --guilds 2
if start_fake --shards 2 --guilds 2; then
  run_check cluster
else
  result cluster FAIL "the fake Discord did not start ($FAKE_SCRIPT)"
fi
stop_fake
timing "checks with the fake" "$(secs "$T_E2E")"
timing "all checks" "$(secs "$T_CHECKS")"

echo
echo "== timings"
printf '  %s\n' "${TIMINGS[@]}"
echo "== results"
printf '  %s\n' "${RESULTS[@]}"
echo "image size added over the base: $(mb $((IMAGE_BYTES - BASE_BYTES))) MB ($IMAGE $(mb "$IMAGE_BYTES") MB, $BASE_IMAGE $(mb "$BASE_BYTES") MB)"
if [ "$FAILED" = 0 ]; then echo "docker-check: all checks passed"; else echo "docker-check: FAILED"; fi
exit "$FAILED"
