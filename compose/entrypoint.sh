#!/bin/sh
# The vm container's entry point: on first start, `guardian-vm init` (the owner's API token is
# printed once, in the container's log; keep it); then `guardian-vm run`. The S3 settings come
# from the GUARDIAN_S3_* environment, which overrides vm.toml.
#
#   GUARDIAN_DATA (/data)        data directory (a volume)
#   GUARDIAN_FQDN (required)     the public name edges dial
#   GUARDIAN_P2P_PORT (4001)     libp2p QUIC and TCP port
#   GUARDIAN_HTTP_LISTEN (0.0.0.0:8080)
#   GUARDIAN_WG_ENABLED (false)   true: the WireGuard overlay on ([wg] enabled, at init)
#   GUARDIAN_WG_PORT (51820)      its UDP port
#   GUARDIAN_WG_INTERFACE (guardian0)
#   GUARDIAN_VM_BIN (guardian-vm)
set -eu
data="${GUARDIAN_DATA:-/data}"
bin="${GUARDIAN_VM_BIN:-guardian-vm}"
port="${GUARDIAN_P2P_PORT:-4001}"
if [ ! -f "$data/vm.toml" ]; then
  : "${GUARDIAN_FQDN:?set GUARDIAN_FQDN to the name or address edges dial}"
  set --
  if [ "${GUARDIAN_WG_ENABLED:-false}" = "true" ]; then
    set -- --wg --wg-port "${GUARDIAN_WG_PORT:-51820}" \
      --wg-interface "${GUARDIAN_WG_INTERFACE:-guardian0}"
  fi
  "$bin" init --data "$data" --fqdn "$GUARDIAN_FQDN" \
    --listen "/ip4/0.0.0.0/udp/$port/quic-v1" --listen "/ip4/0.0.0.0/tcp/$port" \
    --http-listen "${GUARDIAN_HTTP_LISTEN:-0.0.0.0:8080}" "$@"
fi
exec "$bin" run --data "$data"
