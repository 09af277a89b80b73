#!/usr/bin/env bash
# A real S3 server for the tests: Ceph's radosgw on a one-node cluster (one monitor, one
# bluestore OSD on a sparse block file, radosgw's beast frontend), on loopback only, with
# everything it writes (config, keyring, data, logs, pid files, admin sockets) under one folder.
# Nothing goes to /etc/ceph, /var/lib/ceph, /var/log/ceph or /var/run/ceph. No ceph-mgr (S3
# does not need one), so `status` shows "HEALTH_WARN no active mgr" after two minutes: expected.
#
#   scripts/radosgw.sh start [DIR]      boot the cluster, or reuse it when it is running
#   scripts/radosgw.sh env [DIR]        print `export GUARDIAN_S3_*=...` lines for eval
#   scripts/radosgw.sh stop [DIR]       stop radosgw, OSD and monitor; keeps the data
#   scripts/radosgw.sh stop-rgw [DIR]   stop only radosgw (S3 "down for a while")
#   scripts/radosgw.sh start-rgw [DIR]  start radosgw again and wait until S3 answers
#   scripts/radosgw.sh status [DIR]     daemons and endpoint; exit 0 only when S3 answers
#   scripts/radosgw.sh destroy [DIR]    stop and remove DIR
#
# DIR defaults to $GUARDIAN_CACHE/radosgw. `start` is idempotent: a running, healthy cluster
# is reused as it is; a stopped one is restarted with its data kept (no new mkfs); a folder
# left half-made by an interrupted first start is wiped and made again.
#
# Settings, read when DIR is first made and then kept in DIR/cluster.env (a later start
# keeps the stored values and warns when the environment asks for others; `destroy` to change):
#   RADOSGW_PORT (17480)      S3 endpoint http://127.0.0.1:PORT
#   RADOSGW_MON_PORT (16789)  monitor, messenger v1 only
#   RADOSGW_OSD_PORTS (16800-16899)  range the OSD binds its messengers in
#   RADOSGW_ACCESS_KEY, RADOSGW_SECRET_KEY, RADOSGW_REGION (us-east-1)
#   RADOSGW_BLOCK_SIZE (10G)  size of the sparse bluestore block file
# And at every run: RADOSGW_TIMEOUT (120) seconds to wait for each daemon.
#
# Needs the packages of scripts/packages/radosgw.txt (scripts/setup.sh 30-radosgw) and root,
# or a user who may write DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

log() { printf '[radosgw] %s\n' "$*" >&2; }
die() { printf '[radosgw] error: %s\n' "$*" >&2; exit 1; }

TIMEOUT="${RADOSGW_TIMEOUT:-120}"
MARKER=.guardian-radosgw # present in every folder this script made
SETTINGS="RADOSGW_PORT RADOSGW_MON_PORT RADOSGW_OSD_PORTS RADOSGW_ACCESS_KEY RADOSGW_SECRET_KEY
  RADOSGW_REGION RADOSGW_BLOCK_SIZE"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# Sets DIR, CONF and the stored settings for folder $1 (or the default).
load_dir() {
  DIR="${1:-$GUARDIAN_CACHE/radosgw}"
  case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
  DIR="${DIR%/}"
  if [ -z "$DIR" ] || [ "$DIR" = / ]; then die "refusing to use / as the cluster folder"; fi
  CONF="$DIR/ceph.conf"
  export CEPH_CONF="$CONF"
  # What the environment asks for, before the stored settings replace it.
  local var
  for var in $SETTINGS; do
    printf -v "WANT_$var" '%s' "${!var-}"
  done
  if [ -f "$DIR/cluster.env" ]; then
    # shellcheck source=/dev/null
    . "$DIR/cluster.env"
  fi
}

created() { [ -f "$DIR/$MARKER" ] && [ -f "$DIR/.created" ] && [ -f "$DIR/cluster.env" ]; }

# Serialises start/stop/destroy on one folder (parallel test runs call `start` together).
# The daemons are started with fd 9 closed, or they would hold the lock for ever.
lock_dir() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w $((TIMEOUT * 3)) 9 || die "another scripts/radosgw.sh holds $DIR/.lock"
}

# `ceph` and `radosgw-admin` with this cluster's config and a bounded wait.
ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 10 "$@"; }
rgw_admin() { timeout 60 radosgw-admin -c "$CONF" -n client.admin "$@"; }

daemon_names() { printf '%s\n' client.rgw "osd.${OSD_ID:-0}" mon.a; }

# Prints the pid of daemon $1 (mon.a, osd.N, client.rgw) when it runs from this folder.
daemon_pid() {
  local file="$DIR/run/$1.pid" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null)" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  ours "$pid" || return 1
  printf '%s\n' "$pid"
}

# Whether process $1 is a daemon of this folder: its command line names this folder's
# ceph.conf (guards against a reused pid).
ours() {
  { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "-c $CONF "
}

port_in_use() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

need_free_port() {
  if port_in_use "$1"; then
    die "port $1 ($2) is taken by another process: $(ss -Hltnp "sport = :$1" | head -1)"
  fi
}

endpoint() { printf 'http://127.0.0.1:%s' "$RADOSGW_PORT"; }

# HTTP status of an anonymous GET / (000 when nothing answers).
http_code() {
  curl -s -o /dev/null -m 5 -w '%{http_code}' "$(endpoint)/" 2>/dev/null || true
}

s3_answers() { [ "$(http_code)" != 000 ]; }

log_tail() {
  local f="$DIR/log/$1.log"
  if [ -f "$f" ]; then
    printf '[radosgw] --- last lines of %s ---\n' "$f" >&2
    tail -n 25 "$f" >&2
  fi
}

# Runs check $2 every half second until it succeeds; dies with daemon $1's log tail after
# $TIMEOUT seconds or when the daemon exits.
wait_for() {
  local name="$1" check="$2" what="$3" deadline=$((SECONDS + TIMEOUT))
  until "$check"; do
    if ! daemon_pid "$name" >/dev/null; then
      sleep 1 # the pid file may lag the fork by a moment
      if ! daemon_pid "$name" >/dev/null; then
        log_tail "$name"
        die "$name exited while waiting for $what (log: $DIR/log/$name.log)"
      fi
    fi
    if [ $SECONDS -ge $deadline ]; then
      log_tail "$name"
      die "timed out after ${TIMEOUT}s waiting for $what (log: $DIR/log/$name.log)"
    fi
    sleep 0.5
  done
}

mon_answers() { ceph_cli mon stat >/dev/null 2>&1; }
osd_up() { ceph_cli osd stat 2>/dev/null | grep -q ' 1 up'; }

write_conf() {
  cat >"$CONF" <<EOF
# Made by scripts/radosgw.sh: a one-node cluster on loopback for the tests.
[global]
fsid = $FSID
mon_host = v1:127.0.0.1:$RADOSGW_MON_PORT
mon_initial_members = a
# msgr2 off: everything speaks v1 (the monmap must then name a v1 address).
ms_bind_msgr2 = false
ms_bind_port_min = ${RADOSGW_OSD_PORTS%-*}
ms_bind_port_max = ${RADOSGW_OSD_PORTS#*-}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $DIR/keyring
run_dir = $DIR/run
log_file = $DIR/log/\$name.log
crash_dir = $DIR/crash
mon_cluster_log_file = $DIR/log/cluster.log
# One OSD: pools of size 1, placement across OSDs rather than hosts, few PGs.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_warn_on_pool_no_redundancy = false
mon_warn_on_pool_pg_num_not_power_of_two = false
# A stopped OSD must never be marked out (its PGs would have nowhere to go).
mon_osd_down_out_interval = 0
mon_data_avail_warn = 5
mon_data_avail_crit = 1
# Health warnings that are expected here (no auth, no down-out) and would only hide real ones.
mon_warn_on_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_warn_on_osd_down_out_interval_zero = false

[mon]
mon_data = $DIR/mon
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid

[osd]
osd_data = $DIR/osd
osd_objectstore = bluestore
bluestore_block_path = $DIR/osd-block.img
bluestore_block_create = true
bluestore_block_size = $BLOCK_BYTES
bluestore_block_db_create = false
bluestore_block_wal_create = false
osd_crush_update_on_start = false
# Else the OSD's first mon command (set-device-class) can leave before its MonClient knows the
# fsid; the monitor answers "wrong fsid" and the OSD aborts its start.
osd_class_update_on_start = false
osd_memory_target = 1073741824
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid

[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$RADOSGW_PORT
rgw_data = $DIR/rgw
rgw_thread_pool_size = 64
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
EOF
}

# Starts daemon $1 with command $2...: it forks into the background and writes its pid file.
# Its early output goes to DIR/log/NAME.out; fd 9 (the folder lock) is not passed on.
launch() {
  local name="$1"
  shift
  if ! "$@" >>"$DIR/log/$name.out" 2>&1 9>&-; then
    log_tail "$name"
    tail -n 5 "$DIR/log/$name.out" >&2
    die "$1 failed to start"
  fi
}

start_mon() {
  daemon_pid mon.a >/dev/null && return 0
  need_free_port "$RADOSGW_MON_PORT" monitor
  launch mon.a ceph-mon -c "$CONF" -i a
  wait_for mon.a mon_answers "the monitor on port $RADOSGW_MON_PORT"
}

start_osd() {
  daemon_pid "osd.$OSD_ID" >/dev/null && return 0
  launch "osd.$OSD_ID" ceph-osd -c "$CONF" -i "$OSD_ID"
  wait_for "osd.$OSD_ID" osd_up "osd.$OSD_ID to be up"
}

start_rgw() {
  daemon_pid client.rgw >/dev/null && s3_answers && return 0
  if ! daemon_pid client.rgw >/dev/null; then
    need_free_port "$RADOSGW_PORT" radosgw
    launch client.rgw radosgw -c "$CONF" -n client.rgw
  fi
  wait_for client.rgw s3_answers "S3 at $(endpoint)"
}

# Makes the S3 user with the stored keys (unless it is there).
ensure_user() {
  if rgw_admin user info --uid=guardian >/dev/null 2>&1; then
    return 0
  fi
  rgw_admin user create --uid=guardian --display-name="Private AI Guardian tests" \
    --access-key="$RADOSGW_ACCESS_KEY" --secret-key="$RADOSGW_SECRET_KEY" >/dev/null \
    || die "radosgw-admin user create failed"
}

# A first start: new folder, new cluster.
create_cluster() {
  local osd_uuid
  RADOSGW_BLOCK_SIZE="${WANT_RADOSGW_BLOCK_SIZE:-10G}"
  BLOCK_BYTES="$(numfmt --from=iec "$RADOSGW_BLOCK_SIZE")" \
    || die "bad RADOSGW_BLOCK_SIZE $RADOSGW_BLOCK_SIZE"
  FSID="$(uuidgen)"
  OSD_ID=0
  RADOSGW_PORT="${WANT_RADOSGW_PORT:-17480}"
  RADOSGW_MON_PORT="${WANT_RADOSGW_MON_PORT:-16789}"
  RADOSGW_OSD_PORTS="${WANT_RADOSGW_OSD_PORTS:-16800-16899}"
  RADOSGW_ACCESS_KEY="${WANT_RADOSGW_ACCESS_KEY:-GUARDIANTESTACCESSKEY}"
  RADOSGW_SECRET_KEY="${WANT_RADOSGW_SECRET_KEY:-guardian-test-secret-key-not-for-production}"
  RADOSGW_REGION="${WANT_RADOSGW_REGION:-us-east-1}"
  [[ $RADOSGW_OSD_PORTS =~ ^[0-9]+-[0-9]+$ ]] || die "RADOSGW_OSD_PORTS must be MIN-MAX"
  need_free_port "$RADOSGW_MON_PORT" monitor
  need_free_port "$RADOSGW_PORT" radosgw

  log "making a new cluster in $DIR (S3 on 127.0.0.1:$RADOSGW_PORT)"
  mkdir -p "$DIR"/{mon,osd,run,log,rgw,crash}
  touch "$DIR/$MARKER"
  write_conf
  {
    printf '# Settings of this cluster, made by scripts/radosgw.sh; sourced by it.\n'
    local var
    for var in FSID OSD_ID BLOCK_BYTES $SETTINGS; do
      printf '%s=%q\n' "$var" "${!var}"
    done
  } >"$DIR/cluster.env"

  # Keys are not checked (auth none), but mkfs wants a mon. key.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --addv a "[v1:127.0.0.1:$RADOSGW_MON_PORT]" --fsid "$FSID" \
    "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
    || { log_tail mon.a; die "ceph-mon --mkfs failed"; }
  start_mon

  osd_uuid="$(uuidgen)"
  OSD_ID="$(ceph_cli osd create "$osd_uuid")" || die "ceph osd create failed"
  [ "$OSD_ID" = 0 ] || die "expected osd id 0 in a new cluster, got $OSD_ID"
  ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 \
    || { log_tail "osd.$OSD_ID"; die "ceph-osd --mkfs failed"; }
  ceph_cli osd crush add "osd.$OSD_ID" 1.0 host=localhost root=default >/dev/null 2>&1 \
    || die "ceph osd crush add failed"
  start_osd
  start_rgw
  ensure_user
  touch "$DIR/.created"
}

# Warns when the environment asks for settings other than the stored ones.
check_overrides() {
  local var want
  for var in $SETTINGS; do
    want="WANT_$var"
    want="${!want}"
    if [ -n "$want" ] && [ "$want" != "${!var}" ]; then
      log "warning: $var=$want ignored: $DIR was made with ${!var} (destroy it to change)"
    fi
  done
}

all_running() {
  local name
  for name in $(daemon_names); do
    daemon_pid "$name" >/dev/null || return 1
  done
  s3_answers
}

remove_dir() {
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && ! [ -f "$DIR/$MARKER" ]; then
    die "$DIR is not a folder scripts/radosgw.sh made (no $MARKER): not removing it"
  fi
  rm -rf "$DIR"
}

cmd_start() {
  lock_dir
  if created; then
    check_overrides
    if all_running; then
      log "already running: S3 at $(endpoint) ($DIR)"
      return 0
    fi
    log "restarting the cluster in $DIR (data kept)"
    write_conf # from the stored settings: picks up changes to this script's config
    start_mon
    start_osd
    start_rgw
    ensure_user
  else
    if [ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]; then
      [ -f "$DIR/$MARKER" ] || die "$DIR exists and is not a cluster folder of scripts/radosgw.sh"
      log "$DIR holds a half-made cluster: wiping it"
      stop_daemons
      find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
    fi
    create_cluster
  fi
  log "S3 ready at $(endpoint) (eval \"\$(scripts/radosgw.sh env)\")"
}

# SIGTERM, wait, then SIGKILL; $1 the daemon.
stop_daemon() {
  local name="$1" pid deadline
  pid="$(daemon_pid "$name")" || { rm -f "$DIR/run/$name.pid"; return 0; }
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + ${RADOSGW_STOP_TIMEOUT:-30}))
  # Not the pid file: the daemons remove it before they have finished exiting.
  while ours "$pid"; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not stop after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$DIR/run/$name.pid"
}

stop_daemons() {
  local name
  for name in $(daemon_names); do stop_daemon "$name"; done
}

cmd_stop() {
  [ -d "$DIR" ] || { log "no cluster in $DIR"; return 0; }
  lock_dir
  stop_daemons
}

cmd_stop_rgw() {
  created || die "no cluster in $DIR (scripts/radosgw.sh start)"
  lock_dir
  stop_daemon client.rgw
  local deadline=$((SECONDS + 10))
  while s3_answers; do
    [ $SECONDS -lt $deadline ] || die "S3 at $(endpoint) still answers after radosgw stopped"
    sleep 0.2
  done
}

cmd_start_rgw() {
  created || die "no cluster in $DIR (scripts/radosgw.sh start)"
  lock_dir
  if ! daemon_pid mon.a >/dev/null || ! daemon_pid "osd.$OSD_ID" >/dev/null; then
    die "the monitor or OSD of $DIR is not running (scripts/radosgw.sh start)"
  fi
  start_rgw
  log "S3 ready at $(endpoint)"
}

cmd_env() {
  created || die "no cluster in $DIR (scripts/radosgw.sh start)"
  printf 'export GUARDIAN_S3_ENDPOINT=%q\n' "$(endpoint)"
  printf 'export GUARDIAN_S3_ACCESS_KEY=%q\n' "$RADOSGW_ACCESS_KEY"
  printf 'export GUARDIAN_S3_SECRET_KEY=%q\n' "$RADOSGW_SECRET_KEY"
  printf 'export GUARDIAN_S3_REGION=%q\n' "$RADOSGW_REGION"
}

cmd_status() {
  if ! created; then
    echo "no cluster in $DIR"
    return 1
  fi
  local name pid code
  echo "folder: $DIR"
  for name in $(daemon_names); do
    if pid="$(daemon_pid "$name")"; then
      echo "$name: running (pid $pid)"
    else
      echo "$name: stopped"
    fi
  done
  code="$(http_code)"
  if [ "$code" = 000 ]; then
    echo "S3 $(endpoint): not answering"
  else
    echo "S3 $(endpoint): answering (anonymous GET / -> HTTP $code)"
  fi
  if daemon_pid mon.a >/dev/null; then
    ceph_cli health 2>/dev/null | sed 's/^/health: /' || true
  fi
  [ "$code" != 000 ]
}

cmd_destroy() {
  [ -e "$DIR" ] || { log "nothing at $DIR"; return 0; }
  [ -f "$DIR/$MARKER" ] || [ -z "$(ls -A "$DIR")" ] \
    || die "$DIR is not a folder scripts/radosgw.sh made (no $MARKER): not removing it"
  lock_dir
  stop_daemons
  remove_dir
  log "removed $DIR"
}

main() {
  [ $# -ge 1 ] || usage
  local cmd="$1"
  shift
  [ $# -le 1 ] || usage
  load_dir "${1:-}"
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    stop-rgw) cmd_stop_rgw ;;
    start-rgw) cmd_start_rgw ;;
    env) cmd_env ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
