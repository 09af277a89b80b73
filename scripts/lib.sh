# Shared helpers for the set-up scripts. Source it; it defines no side effects of its own.
#
# GUARDIAN_CACHE is a fixed folder outside the clone for everything slow to make again
# (cargo target dir, tools, models); it survives fresh clones on the same machine.

GUARDIAN_CACHE="${GUARDIAN_CACHE:-/var/cache/private-ai-guardian}"
export GUARDIAN_CACHE

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Packages from a list file (one per line, '#' comments) that dpkg does not have installed.
missing_debian_packages() {
  local pkg
  for pkg in $(sed -e 's/#.*//' "$1"); do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Installs the packages of a list file that are missing; does nothing (and needs no network)
# when all are there.
ensure_debian_packages() {
  local list="$1" missing
  missing=$(missing_debian_packages "$list" | tr '\n' ' ')
  if [ -z "${missing// /}" ]; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "missing Debian packages ($missing) and not root to install them"
  log "installing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  # Another process (unattended upgrades, a parallel set-up) may hold dpkg's lock: wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || die "apt-get update failed"
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null \
    || die "apt-get install $missing failed"
}
