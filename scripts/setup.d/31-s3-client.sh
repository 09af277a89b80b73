#!/usr/bin/env bash
# An S3 client independent of the project's own code, for tests to inspect buckets:
# boto3 (pinned) in a venv at $GUARDIAN_CACHE/venv-s3, used by scripts/s3-inspect.py.
# Does nothing (and needs no network) when the pinned version is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

BOTO3_VERSION=1.44.8
venv="$GUARDIAN_CACHE/venv-s3"

# Debian's python3 (not whatever pyenv puts first on PATH): the package list is for it.
python=/usr/bin/python3
if ! [ -x "$python" ] || ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  ensure_debian_packages "$here/packages/s3-client.txt"
fi

if [ -x "$venv/bin/python" ] \
  && [ "$("$venv/bin/python" -c 'import boto3; print(boto3.__version__)' 2>/dev/null)" = "$BOTO3_VERSION" ]; then
  exit 0
fi

log "creating $venv with boto3 $BOTO3_VERSION"
rm -rf "$venv"
"$python" -m venv "$venv" || die "python3 -m venv $venv failed"
"$venv/bin/pip" install --quiet --disable-pip-version-check "boto3==$BOTO3_VERSION" \
  || die "pip install boto3==$BOTO3_VERSION failed"
