#!/usr/bin/env bash
# `make demo` (and `make demo-up`): the product end to end on one machine, on embedded
# defaults. A vm with its embedded S3 server; the owner's keys; an install package; an edge
# enrolled from it; an RTSP camera stand-in in which a person walks through; the edge detects
# the person, records the clip with pre- and post-roll, seals it to the owner and archives it
# through the vm; the owner fetches it by CID and decrypts it. Prints a summary and stops
# everything (DEMO_UP=1: keeps running, the person walking through every 30 s, until Ctrl-C).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="${CARGO_TARGET_DIR:-$GUARDIAN_CACHE/target}/release"
repo="$(cd "$here/.." && pwd)"
# The edge finds the model and OpenVINO in the set-up cache by itself (GUARDIAN_CACHE).
up="${DEMO_UP:-0}"
work="${DEMO_DIR:-$(mktemp -d /tmp/guardian-demo.XXXXXX)}"
mkdir -p "$work"

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }
pids=()
cleanup() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -eq 0 ] || say "stopping the edge, the camera stand-in and the vm..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  say "stopped. Everything the demo made is in $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { printf '\n[demo] error: %s (logs in %s)\n' "$*" "$work" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_until() { # seconds, description, command...
  local secs="$1" what="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}
t0=$(date +%s.%N)
elapsed() { python3 -c "import time; print(f'{time.time() - $t0:5.1f} s')"; }

step "The vm (tenant node) on loopback: libp2p QUIC+TCP, the HTTP API, its embedded S3 server"
p2p=$(free_port); http=$(free_port)
# The WireGuard overlay on (as root; else the vm says why and runs on), on an interface and
# port of the demo's own (the edge on this machine has guardian0).
"$bin/guardian-vm" init --data "$work/vm" --fqdn 127.0.0.1 \
  --listen "/ip4/127.0.0.1/udp/$p2p/quic-v1" --listen "/ip4/127.0.0.1/tcp/$p2p" \
  --http-listen "127.0.0.1:$http" --wg --wg-interface gdn-demo-vm --wg-port "$(free_port)" \
  > "$work/vm-init.txt"
tenant=$(awk '/^tenant id:/{print $3}' "$work/vm-init.txt")
token=$(awk '/^owner API token:/{print $4}' "$work/vm-init.txt")
# The household's home automation: a webhook receiver that checks the vm's signatures.
hook_secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
/usr/bin/python3 "$repo/test-support/tools/notify_receiver.py" --port 0 --secret "$hook_secret" \
  --log "$work/alerts-received.jsonl" > "$work/receiver.log" 2>&1 & pids+=($!)
receiver_ready() { grep -q '^READY ' "$work/receiver.log"; }
wait_until 30 "the webhook receiver" receiver_ready
hook_url="$(awk '/^READY /{print $2; exit}' "$work/receiver.log")/webhook"
sed -i "s|^webhooks = \[\]|webhooks = [{ name = \"home-automation\", url = \"$hook_url\", secret = \"$hook_secret\" }]|" "$work/vm/vm.toml"
grep -q 'name = "home-automation"' "$work/vm/vm.toml" || fail "could not configure the demo's webhook in vm.toml"
GUARDIAN_LOG=info "$bin/guardian-vm" run --data "$work/vm" > "$work/vm.log" 2>&1 & pids+=($!)
api() { curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$http$1"; }
wait_until 30 "the vm's API" api /api/v1/health
say "tenant $tenant, API http://127.0.0.1:$http"
say "WireGuard overlay: $(api /api/v1/wg | python3 -c 'import json, sys; w = json.load(sys.stdin); print("up on %s, %s and %s, endpoint %s" % (w["interface"], w["prefix_v6"], w["range_v4"], w["endpoint"]) if w["enabled"] else "off (%s)" % w["error"])')"

step "The owner's keys, derived from a passphrase (only the owner holds it; the vm gets the public recipient)"
printf 'correct horse battery staple, the owner demo passphrase\n' > "$work/owner.secret"
chmod 600 "$work/owner.secret"
recipient=$("$bin/guardian" keys init --tenant "$tenant" --secret-file "$work/owner.secret" | tee "$work/owner-keys.txt" | awk '/^recipient:/{print $2}')
signing_key=$(awk '/^owner signing key:/{print $4}' "$work/owner-keys.txt")
signing_fp=$(awk '/^owner signing key fingerprint:/{print $5}' "$work/owner-keys.txt")
say "recipient $recipient"
say "owner signing key $signing_fp (signs the household's key slots; never leaves the owner's machine)"

step "An install package for the edge, and the edge enrolled from it"
"$bin/guardian-vm" package edge --data "$work/vm" --name home --recipient "$recipient" \
  --owner-signing-key "$signing_key" --out "$work/home.tar" > /dev/null
say "package $work/home.tar (signed; the vm's address, a single-use token, the owner's recipient: no key of the edge)"
say "(as a cloud-init seed: guardian-vm package edge --format iso ...)"
say "the edge makes its own keys at init (the vm sees only their public halves):"
"$bin/guardian-edge" init --package "$work/home.tar" --data "$work/edge" \
  | grep -E '^(edge peer id|edge key fingerprint|age recipient fingerprint|owner archive key id|owner signing key fingerprint):' | sed 's/^/   /'
GUARDIAN_LOG=info "$bin/guardian-edge" run --data "$work/edge" > "$work/edge.log" 2>&1 & pids+=($!)
enrolled() { api /api/v1/devices | grep -q '"online":true'; }
wait_until 60 "the edge to enroll" enrolled
say "the edge enrolled and is online"

step "A household member's key slot, signed by the owner in the CLI (the vm only forwards it)"
printf 'the family member demo passphrase\n' > "$work/member.secret"
chmod 600 "$work/member.secret"
member=$("$bin/guardian" keys init --tenant "$tenant" --secret-file "$work/member.secret" | awk '/^recipient:/{print $2}')
"$bin/guardian" keys identity --tenant "$tenant" --secret-file "$work/member.secret" > "$work/member.identity"
slots() { "$bin/guardian" keys slots "$@" --vm "http://127.0.0.1:$http" --token "$token" --tenant "$tenant" --secret-file "$work/owner.secret"; }
slots add --name family --recipient "$member" > /dev/null
applied() { slots list | grep -q 'applied, applied version 1'; }
wait_until 60 "the edge to apply the key slots" applied
slots list | sed 's/^/   /'

step "The camera stand-in: RTSP, 1280x720 H.264, a person walks through after 6 s"
schedule="empty:6,person:5,empty:30"
[ "$up" = 1 ] && schedule="empty:6,person:5,empty:25"
loop=(); [ "$up" = 1 ] && loop=(--loop)
/usr/bin/python3 "$repo/edge/tools/camera-standin.py" --port 0 --path /porch \
  --schedule "$schedule" "${loop[@]}" > "$work/standin.log" 2>&1 & pids+=($!)
standin_ready() { grep -q '^READY ' "$work/standin.log"; }
wait_until 30 "the camera stand-in" standin_ready
url=$(awk '/^READY /{print $2; exit}' "$work/standin.log")
say "configured at the vm (no login on the edge; a password would be sealed here to the edge's own key):"
cameras() { "$bin/guardian" cameras "$@" --vm "http://127.0.0.1:$http" --token "$token"; }
cameras set --id porch --name "Porch" --url "$url" | sed 's/^/   /'
streaming() { cameras list | grep -q '^porch .*streaming .*applied'; }
wait_until 60 "the camera to stream on the edge" streaming
cameras list | sed 's/^/   /'
"$bin/guardian" cameras snapshot --id porch -o "$work/porch-now.jpg" --vm "http://127.0.0.1:$http" \
  --token "$token" --tenant "$tenant" --secret-file "$work/owner.secret" > "$work/snapshot.txt" \
  || fail "no fresh snapshot: $(cat "$work/snapshot.txt")"
say "a fresh picture to draw zones on, sealed by the edge, relayed by the vm, opened here: $(sed 's/^camera porch: //' "$work/snapshot.txt")"
say "discovery (ONVIF, RTSP, USB) is off here, on your own networks; installed edges scan their LAN: guardian cameras discovered"

step "Waiting for the person: detection (OpenVINO, NanoDet) -> event -> clip with 5 s pre/post-roll -> sealed -> archived"
person_event() { api "/api/v1/events?camera=porch" | grep -q '"category":"person"'; }
wait_until 120 "a person event at the vm" person_event
t_event=$(elapsed)
archived() { api "/api/v1/archive?camera=porch" | grep -q '"kind":"clip"'; }
wait_until 120 "the clip in the archive" archived
t_archived=$(elapsed)
api "/api/v1/events?camera=porch" > "$work/events.json"
api "/api/v1/archive?camera=porch" > "$work/archive.json"
read -r event category score started ended < <(python3 -c '
import json,sys; e=json.load(open(sys.argv[1]))["events"][0]
print(e["event_id"], e["category"], e["score_milli"]/1000, e["started_at_ms"], e["ended_at_ms"])' "$work/events.json")
read -r clip_cid clip_size snap_cid snap_size < <(python3 -c '
import json,sys; o=[x for x in json.load(open(sys.argv[1]))["objects"] if x["event_id"]==sys.argv[2]]
c=[x for x in o if x["kind"]=="clip"][0]; s=[x for x in o if x["kind"]=="snapshot"]
s=s[0] if s else {"cid":"-","size":0}
print(c["cid"], c["size"], s["cid"], s["size"])' "$work/archive.json" "$event")
say "event $event: $category, score $score"

step "The alert: the default rule (person or vehicle, mode away) sent a signed webhook as the person was confirmed"
alerted() { python3 - "$work/alerts-received.jsonl" "$event" <<'PY'
import json, sys
hooks = [json.loads(l) for l in open(sys.argv[1])]
ok = [h for h in hooks if h["body"].get("event_id") == sys.argv[2] and h["signature_ok"] and h["status"] == 200]
sys.exit(0 if ok else 1)
PY
}
wait_until 30 "the alert at the webhook receiver" alerted
read -r alert_title alert_ms alert_verdict < <(python3 - "$work/alerts-received.jsonl" "$event" <<'PY'
import json, sys
h = [json.loads(l) for l in open(sys.argv[1])]
h = [x for x in h if x["body"].get("event_id") == sys.argv[2] and x["signature_ok"]][0]
b = h["body"]
v = (b.get("verification") or {}).get("verdict", "none")
print(b["title"].replace(" ", "_"), h["received_ms"] - b.get("confirmed_at_ms", h["received_ms"]), v)
PY
)
alert_title=${alert_title//_/ }
say "\"$alert_title\": HMAC signature valid, $alert_ms ms after the edge confirmed the person, second look: $alert_verdict"
say "(also ntfy, e-mail and MQTT with Home Assistant discovery: [[notify.ntfy]], [notify.smtp], [mqtt] in vm.toml)"
api /api/v1/alerts > "$work/alerts.json"

step "The owner fetches the clip by CID, checks the edge's signature and the CID, and decrypts it"
"$bin/guardian" fetch --vm "http://127.0.0.1:$http" --token "$token" --tenant "$tenant" \
  --secret-file "$work/owner.secret" "$clip_cid" -o "$work/porch-person.mp4" | sed 's/^/   /'
if [ "$snap_cid" != "-" ]; then
  "$bin/guardian" fetch --vm "http://127.0.0.1:$http" --token "$token" --tenant "$tenant" \
    --secret-file "$work/owner.secret" "$snap_cid" -o "$work/porch-person.jpg" > /dev/null
fi
duration=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work/porch-person.mp4")
keyframe=$(ffprobe -v error -select_streams v -show_entries frame=key_frame -read_intervals '%+#1' -of default=nw=1:nk=1 "$work/porch-person.mp4" | head -1)
[ "$keyframe" = 1 ] || fail "the clip does not start on a keyframe"
ffmpeg -v error -i "$work/porch-person.mp4" -f null - 2> "$work/decode.txt" || fail "the clip does not decode"
[ -s "$work/decode.txt" ] && fail "decode errors: $(head -3 "$work/decode.txt")"

step "The owner plays the edge's sealed copy remotely: a one-time token from the vm, ciphertext streamed through its relay (direct when hole punching succeeds), checked against the edge's signed manifest and decrypted as it arrives"
"$bin/guardian" play --vm "http://127.0.0.1:$http" --token "$token" "$event" \
  --tenant "$tenant" --secret-file "$work/owner.secret" \
  -o "$work/porch-played.mp4" | sed 's/^/   /'
cmp -s "$work/porch-played.mp4" "$work/porch-person.mp4" \
  || fail "the clip played from the edge differs from the one decrypted from the archive"
say "same bytes as the clip decrypted from the archive"
find "$work/edge" -name '*.mp4' -o -name '*.work' | grep -q . \
  && fail "plaintext or a working file left on the edge: $(find "$work/edge" -name '*.mp4' -o -name '*.work')"
say "the edge holds the clip only sealed: $(cd "$work/edge" && ls clips/porch/"$event"/ | tr '\n' ' ')"
curl -s -H "Authorization: Bearer $token" -H "Range: bytes=0-20" \
  "http://127.0.0.1:$http/api/v1/events/$event/clip" > "$work/http-head.txt"
[ "$(cat "$work/http-head.txt")" = "age-encryption.org/v1" ] || fail "the vm's HTTP clip is not the sealed age file"
say "the vm's HTTP clip path serves the age file (it begins with age-encryption.org/v1)"
age -d -i "$work/member.identity" "$work/edge/clips/porch/$event/clip.mp4.age" > "$work/porch-member.mp4" \
  || fail "the family member's key does not open the clip"
cmp -s "$work/porch-member.mp4" "$work/porch-person.mp4" || fail "the member's clip differs"
say "the family member's own key opens the same clip (stock age -d; sealed to the owner and the slot)"
"$bin/guardian" keys identity --tenant "$tenant" --secret-file "$work/owner.secret" > "$work/owner.identity"
api "/api/v1/events/$event/thumbnail" > "$work/thumbnail.jpg.age"
age -d -i "$work/owner.identity" "$work/thumbnail.jpg.age" > "$work/porch-thumbnail.jpg" \
  || fail "the vm's thumbnail does not open"
thumb_size=$(ffprobe -v error -show_entries stream=width,height -of csv=p=0:s=x "$work/porch-thumbnail.jpg")
say "the vm holds the sealed thumbnail for the timeline ($(stat -c %s "$work/thumbnail.jpg.age") bytes sealed, $thumb_size once opened by the owner)"
step "The web app: served by the vm (and by the edge on the LAN); keys and video only in the browser"
"$bin/guardian" web verify "http://127.0.0.1:$http" > "$work/web-verify.txt" \
  || fail "guardian web verify: the served app is not this release's ($work/web-verify.txt)"
web_hash=$(sed -n 's/^release bundle sha256: //p' "$work/web-verify.txt")
say "guardian web verify: every file the vm serves is this release's (bundle $web_hash)"
viewer_pw="porch viewer $(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
curl -fsS -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"password\": \"$viewer_pw\", \"role\": \"viewer\", \"cameras\": [\"porch\"]}" \
  "http://127.0.0.1:$http/api/v1/users/neighbour" > /dev/null || fail "creating the viewer user"
printf '%s\n' "$viewer_pw" > "$work/viewer.password"
say "a viewer user \"neighbour\" (porch only; password in $work/viewer.password): the API, not only the page, limits it"

seen=""
if [ -f "$work/porch-person.jpg" ]; then
  seen=$("$bin/guardian-edge" detect "$work/porch-person.jpg" 2>/dev/null | grep -c '"label":"person"' || true)
fi

cat <<SUMMARY

== Summary
   event       $event (camera porch, $category, score $score)
   times       person seen $(python3 -c "import datetime,sys; print(datetime.datetime.fromtimestamp($started/1000).strftime('%H:%M:%S'))") to $(python3 -c "import datetime; print(datetime.datetime.fromtimestamp($ended/1000).strftime('%H:%M:%S'))"); event at the vm after $t_event, archived after $t_archived (from the start of the demo)
   clip        CID $clip_cid, $clip_size bytes sealed
               decrypted: $work/porch-person.mp4 (${duration%.*} s, starts on a keyframe, decodes cleanly)
               played from the edge: $work/porch-played.mp4 (guardian play, decrypted as it streamed; the same bytes)
   snapshot    CID $snap_cid, $snap_size bytes sealed; decrypted: $work/porch-person.jpg (person found again: ${seen:-0})
   thumbnail   at the vm, sealed: GET /api/v1/events/$event/thumbnail; opened by the owner: $work/porch-thumbnail.jpg ($thumb_size)
   alert       "$alert_title" at the webhook receiver ($work/alerts-received.jsonl), signed, $alert_ms ms after the person was confirmed;
               second look on the edge: $alert_verdict; GET /api/v1/alerts lists it; mode and rules: /api/v1/mode, /api/v1/alerts/rules
   key slots   version 1, "family": the member's own key opened $work/porch-member.mp4 (the vm cannot sign a slot)
   cameras     porch configured at the vm (guardian cameras set; GET/PUT/DELETE /api/v1/cameras), pushed to the edge, streaming;
               a fresh sealed snapshot: $work/porch-now.jpg (GET /api/v1/cameras/porch/snapshot); LAN discovery: GET /api/v1/cameras/discovered
   on the edge $work/edge/clips/porch/$event/ (sealed clip, snapshot, thumbnail, signed manifest; no plaintext)
   S3 bucket   camera-porch, keys events/$event/{clip.mp4.age,snapshot.jpg.age,thumbnail.jpg.age,manifest.json} (the edge's sealed objects, not sealed again)
   the API     curl -H "Authorization: Bearer $token" http://127.0.0.1:$http/api/v1/events
               (devices, events, health, archive, /metrics; all behind the token; vm/openapi.yaml)
   web app     http://127.0.0.1:$http/  sign in with the owner token, then type the passphrase ($work/owner.secret):
               Review, the event's clip decrypted in the page, Cameras, System, Archive, Keys, Users, Alerts
               (guardian web verify http://127.0.0.1:$http: the bundle is this release's, $web_hash)
   privacy     the vm and S3 hold only ciphertext; the key is derived from $work/owner.secret
SUMMARY

if [ "$up" = 1 ]; then
  step "Running until Ctrl-C: the person walks through every 30 s; watch the events arrive:"
  say "curl -H 'Authorization: Bearer $token' http://127.0.0.1:$http/api/v1/events"
  say "or in a browser: http://127.0.0.1:$http/ (owner token $token)"
  wait "${pids[0]}"
fi
