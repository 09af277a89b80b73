#!/usr/bin/env bash
# `make demo`. The full demo (vm, camera stand-in, edge, event archived and fetched by CID)
# arrives with the demo issue; until then this says so plainly and walks through what is
# built: the owner's keys, sealing, CIDs, stock-age interoperability and tamper detection.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="${CARGO_TARGET_DIR:-$GUARDIAN_CACHE/target}/release"
guardian="$bin/guardian"

cat <<'MSG'
== Private AI Guardian demo ==
Not ready yet: the end-to-end demo (a vm with its S3 server, a camera stand-in with a person,
an edge, the event clip archived and fetched by CID) lands with the demo issue.
What works today is the foundation; here it is, step by step.
MSG

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tenant="demo-tenant"
printf 'a long passphrase only the owner knows\n' > "$work/secret"

echo; echo "1. The owner's key, from a secret and the tenant id (Argon2id, 64 MiB, 3 passes):"
"$guardian" keys init --tenant "$tenant" --secret-file "$work/secret" | sed 's/^/   /'
recipient=$("$guardian" keys init --tenant "$tenant" --secret-file "$work/secret" | awk '/^recipient:/{print $2}')

echo; echo "2. A stand-in clip (4 MiB) sealed for the owner; the CID is computed while sealing:"
head -c $((4 << 20)) /dev/urandom > "$work/clip.mp4"
cid=$("$guardian" seal --recipient "$recipient" "$work/clip.mp4" -o "$work/clip.mp4.age")
echo "   CID $cid, $(stat -c %s "$work/clip.mp4.age") bytes sealed"
echo "   guardian cid agrees: $("$guardian" cid "$work/clip.mp4.age")"

echo; echo "3. Stock age opens it with the derived identity:"
"$guardian" keys identity --tenant "$tenant" --secret-file "$work/secret" > "$work/identity.txt"
age -d -i "$work/identity.txt" "$work/clip.mp4.age" | cmp - "$work/clip.mp4" && echo "   age -d -i: identical to the original"

echo; echo "4. One flipped byte is refused, and no output file is left:"
cp "$work/clip.mp4.age" "$work/flipped.age"
printf '\x00' | dd of="$work/flipped.age" bs=1 seek=100000 conv=notrunc status=none
if "$guardian" open --tenant "$tenant" --secret-file "$work/secret" "$work/flipped.age" -o "$work/out.mp4" 2> "$work/err"; then
  echo "   unexpected: the corrupt file opened"; exit 1
fi
echo "   $(cat "$work/err")"
[ ! -e "$work/out.mp4" ] && echo "   no $work/out.mp4 was written"
echo; echo "Demo of the foundation done. See README.md for what comes next."
