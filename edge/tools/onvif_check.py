#!/usr/bin/python3
"""An independent ONVIF client to check a camera (or edge/tools/onvif_standin.py): WS-Discovery
probe and the device and media services with WS-Security digests. Standard library only.

    edge/tools/onvif_check.py [--iface 127.0.0.1] [--device http://HOST:PORT/onvif/device_service]
        [--user admin --password secret] [--expect-profiles N] [--expect-sub-url URL] [--no-probe]

Without --device it probes 239.255.255.250:3702 from --iface (IP_MULTICAST_IF, loop on) and uses
the first match's XAddrs. Prints one "ok ..." or "FAIL ..." line per check; exit status 1 if any
check failed.
"""

import argparse
import base64
import datetime
import hashlib
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TT = "http://www.onvif.org/ver10/schema"
TER = "http://www.onvif.org/ver10/error"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

FAILED = []


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail and not cond else ""))
    if not cond:
        FAILED.append(what)
    return cond


def probe(iface, timeout=3.0, types="dp0:NetworkVideoTransmitter"):
    """Sends one Probe (prefixes deliberately unlike the camera's) and collects ProbeMatch
    dictionaries until `timeout`."""
    mid = f"urn:uuid:{uuid.uuid4()}"
    msg = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{ENV}" xmlns:a="{WSA}">'
           f"<s:Header><a:Action>{WSD}/Probe</a:Action><a:MessageID>{mid}</a:MessageID>"
           f"<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>"
           f'<s:Body><Probe xmlns="{WSD}"><Types xmlns:dp0="http://www.onvif.org/ver10/network/wsdl">'
           f"{types}</Types></Probe></s:Body></s:Envelope>").encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    s.bind((iface, 0))
    s.sendto(msg, ("239.255.255.250", 3702))
    out = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            break
        root = ET.fromstring(data)
        hdr = root.find(f"{{{ENV}}}Header")
        for m in root.iter(f"{{{WSD}}}ProbeMatch"):
            out.append({
                "from": src,
                "relates_to": hdr.findtext(f"{{{WSA}}}RelatesTo"),
                "action": hdr.findtext(f"{{{WSA}}}Action"),
                "to": hdr.findtext(f"{{{WSA}}}To"),
                "message_id": hdr.findtext(f"{{{WSA}}}MessageID"),
                "address": m.findtext(f"{{{WSA}}}EndpointReference/{{{WSA}}}Address"),
                "types": m.findtext(f"{{{WSD}}}Types"),
                "scopes": (m.findtext(f"{{{WSD}}}Scopes") or "").split(),
                "xaddrs": (m.findtext(f"{{{WSD}}}XAddrs") or "").split(),
                "metadata_version": m.findtext(f"{{{WSD}}}MetadataVersion"),
                "probe_id": mid,
            })
    s.close()
    return out


def security(user, password, nonce=None, created=None, kind=DIGEST):
    nonce = nonce if nonce is not None else os.urandom(16)
    created = created or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if kind == DIGEST:
        pw = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    else:
        pw = password
    return (f'<o:Security s:mustUnderstand="1" xmlns:o="{WSSE}"><o:UsernameToken>'
            f"<o:Username>{user}</o:Username><o:Password Type=\"{kind}\">{pw}</o:Password>"
            f'<o:Nonce EncodingType="{B64}">{base64.b64encode(nonce).decode()}</o:Nonce>'
            f'<u:Created xmlns:u="{WSU}">{created}</u:Created></o:UsernameToken></o:Security>')


def call(url, body, header=""):
    """(HTTP status, parsed envelope) of a SOAP 1.2 POST; prefixes 's' for the envelope."""
    data = (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{ENV}">'
            f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/soap+xml; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, ET.fromstring(r.read()), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, ET.fromstring(e.read()), e.headers.get("Content-Type")


def subcodes(root):
    out = []
    code = root.find(f".//{{{ENV}}}Fault/{{{ENV}}}Code")
    if code is None:
        return out
    out.append(code.findtext(f"{{{ENV}}}Value"))
    sub = code.find(f"{{{ENV}}}Subcode")
    while sub is not None:
        out.append(sub.findtext(f"{{{ENV}}}Value"))
        sub = sub.find(f"{{{ENV}}}Subcode")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iface", default="127.0.0.1")
    ap.add_argument("--device")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--expect-profiles", type=int, default=2)
    ap.add_argument("--expect-sub-url")
    ap.add_argument("--no-probe", action="store_true")
    a = ap.parse_args()

    device = a.device
    if not a.no_probe:
        matches = probe(a.iface)
        check(len(matches) >= 1, "probe: a ProbeMatch arrives", f"{len(matches)} matches")
        if matches:
            m = matches[0]
            print(f"     match from {m['from']}: {m['address']} {m['xaddrs']} types={m['types']!r}")
            print(f"     scopes: {' '.join(m['scopes'])}")
            check(m["relates_to"] == m["probe_id"], "probe: RelatesTo is the probe's MessageID")
            check(m["action"] == f"{WSD}/ProbeMatches", "probe: Action ProbeMatches")
            check(m["to"] == f"{WSA}/role/anonymous", "probe: To anonymous")
            check((m["address"] or "").startswith("urn:uuid:"), "probe: EndpointReference urn:uuid")
            check(bool(m["xaddrs"]) and m["xaddrs"][0].endswith("/onvif/device_service"), "probe: XAddrs")
            check(m["metadata_version"] == "1", "probe: MetadataVersion 1")
            device = device or m["xaddrs"][0]
        other = probe(a.iface, 1.5, "dp0:Printer")
        check(not other, "probe: a probe for another type gets nothing", f"{len(other)} matches")
    if not device:
        print("FAIL no device URL")
        return 1
    user, pw = a.user, a.password

    st, r, ctype = call(device, f'<GetSystemDateAndTime xmlns="{TDS}"/>')
    year = r.findtext(f".//{{{TT}}}UTCDateTime/{{{TT}}}Date/{{{TT}}}Year")
    check(st == 200 and year == str(datetime.datetime.now(datetime.timezone.utc).year),
          "GetSystemDateAndTime without auth", f"{st} {year}")
    check((ctype or "").startswith("application/soap+xml"), "Content-Type application/soap+xml", ctype)

    st, r, _ = call(device, f'<x:GetCapabilities xmlns:x="{TDS}"><x:Category>All</x:Category></x:GetCapabilities>')
    media = r.findtext(f".//{{{TT}}}Media/{{{TT}}}XAddr")
    rtsp_tcp = r.findtext(f".//{{{TT}}}Media/{{{TT}}}StreamingCapabilities/{{{TT}}}RTP_RTSP_TCP")
    check(st == 200 and media and media.endswith("/onvif/media_service") and rtsp_tcp == "true",
          "GetCapabilities without auth: Media XAddr", f"{st} {media} {rtsp_tcp}")
    media = media or device

    st, r, _ = call(device, f'<GetServices xmlns="{TDS}"><IncludeCapability>false</IncludeCapability></GetServices>')
    nss = [e.text for e in r.iter(f"{{{TDS}}}Namespace")]
    check(st == 200 and TDS in nss and TRT in nss, "GetServices without auth", f"{st} {nss}")

    st, r, _ = call(media, f'<GetProfiles xmlns="{TRT}"/>')
    check(st == 400 and subcodes(r) == ["env:Sender", "ter:NotAuthorized"],
          "GetProfiles without auth: 400 NotAuthorized", f"{st} {subcodes(r)}")
    reason = r.findtext(f".//{{{ENV}}}Reason/{{{ENV}}}Text")
    check(reason == "Sender not Authorized", "fault Reason 'Sender not Authorized'", reason)

    nonce = os.urandom(20)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sec = security(user, pw, nonce, created)
    st, r, _ = call(media, f'<trt:GetProfiles xmlns:trt="{TRT}"/>', sec)
    profiles = r.findall(f".//{{{TRT}}}Profiles")
    check(st == 200 and len(profiles) == a.expect_profiles,
          f"GetProfiles with a digest: {a.expect_profiles} profiles", f"{st} {len(profiles)}")
    for p in profiles:
        venc = p.find(f"{{{TT}}}VideoEncoderConfiguration")
        bounds = p.find(f"{{{TT}}}VideoSourceConfiguration/{{{TT}}}Bounds")
        print(f"     profile {p.get('token')} fixed={p.get('fixed')} name={p.findtext(f'{{{TT}}}Name')} "
              f"venc={venc.get('token')} {venc.findtext(f'{{{TT}}}Encoding')} "
              f"{venc.findtext(f'{{{TT}}}Resolution/{{{TT}}}Width')}x"
              f"{venc.findtext(f'{{{TT}}}Resolution/{{{TT}}}Height')} "
              f"fps={venc.findtext(f'{{{TT}}}RateControl/{{{TT}}}FrameRateLimit')} "
              f"kbps={venc.findtext(f'{{{TT}}}RateControl/{{{TT}}}BitrateLimit')} "
              f"bounds={bounds.get('width')}x{bounds.get('height')}")

    st, r, _ = call(media, f'<trt:GetProfiles xmlns:trt="{TRT}"/>', sec)
    check(st == 400 and "ter:NotAuthorized" in subcodes(r), "replayed nonce: refused", f"{st}")

    st, r, _ = call(media, f'<trt:GetProfiles xmlns:trt="{TRT}"/>', security(user, pw + "x"))
    check(st == 400 and "ter:NotAuthorized" in subcodes(r), "wrong password: 400 NotAuthorized", f"{st}")

    st, r, _ = call(media, f'<trt:GetProfiles xmlns:trt="{TRT}"/>', security(user + "x", pw))
    check(st == 400 and "ter:NotAuthorized" in subcodes(r), "wrong user: 400 NotAuthorized", f"{st}")

    st, r, _ = call(media, f'<trt:GetProfiles xmlns:trt="{TRT}"/>', security(user, pw, kind=TEXT))
    check(st == 400 and "ter:NotAuthorized" in subcodes(r), "PasswordText: refused", f"{st}")

    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    st, r, _ = call(media, f'<trt:GetProfiles xmlns:trt="{TRT}"/>', security(user, pw, created=old))
    check(st == 400 and "ter:NotAuthorized" in subcodes(r), "Created 6 minutes ago: refused", f"{st}")

    st, r, _ = call(device, f'<GetDeviceInformation xmlns="{TDS}"/>', security(user, pw))
    check(st == 200 and r.findtext(f".//{{{TDS}}}Manufacturer"), "GetDeviceInformation with a digest",
          f"{st}")
    print("     " + " | ".join(f"{k}={r.findtext(f'.//{{{TDS}}}{k}')}" for k in
                               ("Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId")))
    st, r, _ = call(device, f'<GetDeviceInformation xmlns="{TDS}"/>')
    check(st == 400 and "ter:NotAuthorized" in subcodes(r), "GetDeviceInformation without auth: refused")

    for token in ("main", "sub")[:a.expect_profiles]:
        body = (f'<m:GetStreamUri xmlns:m="{TRT}" xmlns:sch="{TT}"><m:StreamSetup><sch:Stream>RTP-Unicast'
                f"</sch:Stream><sch:Transport><sch:Protocol>RTSP</sch:Protocol></sch:Transport></m:StreamSetup>"
                f"<m:ProfileToken>{token}</m:ProfileToken></m:GetStreamUri>")
        st, r, _ = call(media, body, security(user, pw))
        uri = r.findtext(f".//{{{TRT}}}MediaUri/{{{TT}}}Uri")
        print(f"     GetStreamUri {token}: {uri} (timeout {r.findtext(f'.//{{{TT}}}Timeout')})")
        check(st == 200 and uri and uri.startswith("rtsp://") and "@" not in uri, f"GetStreamUri {token}",
              f"{st} {uri}")
        if token == "sub" and a.expect_sub_url:
            check(uri == a.expect_sub_url, "GetStreamUri sub is the sub URL", uri)

    st, r, _ = call(media, f'<GetStreamUri xmlns="{TRT}"><ProfileToken>nope</ProfileToken></GetStreamUri>',
                    security(user, pw))
    check(st == 400 and subcodes(r) == ["env:Sender", "ter:InvalidArgVal", "ter:NoProfile"],
          "GetStreamUri unknown token: 400 InvalidArgVal/NoProfile", f"{st} {subcodes(r)}")

    st, r, _ = call(media, f'<GetSnapshotUri xmlns="{TRT}"><ProfileToken>main</ProfileToken></GetSnapshotUri>',
                    security(user, pw))
    print(f"     GetSnapshotUri: {st} {subcodes(r) or r.findtext(f'.//{{{TT}}}Uri')}")

    st, r, _ = call(device, f'<GetZoom xmlns="{TDS}"/>', security(user, pw))
    check(st == 400 and subcodes(r) == ["env:Sender", "ter:ActionNotSupported"],
          "unknown operation: 400 ActionNotSupported", f"{st} {subcodes(r)}")

    print("all checks passed" if not FAILED else f"{len(FAILED)} checks FAILED")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
