#!/usr/bin/python3
"""ONVIF camera stand-in: WS-Discovery and the SOAP device and media services of a camera.

Python standard library only. Run on its own:

    edge/tools/onvif_standin.py [--address 127.0.0.1] [--http-port 0] [--user admin --password secret]
        --main-url rtsp://HOST:PORT/cam [--main 1280x720@15] [--main-bitrate KBPS] [--main-gop FRAMES]
        [--sub-url rtsp://HOST:PORT/sub [--sub 640x360@15] [--sub-bitrate KBPS] [--sub-gop FRAMES]]
        [--snapshot-url URL] [--maker NAME] [--model NAME] [--name NAME] [--serial S]
        [--firmware V] [--uuid UUID] [--no-discovery] [--verbose]

or imported (edge/tools/camera-standin.py --onvif-port does so):

    onvif = OnvifStandIn("127.0.0.1", 0, "admin", "secret", "Guardian Labs", "StandIn-Cam 2",
                         "Stand-in camera", "GS-0001", "1.0.0",
                         profiles=[Profile("main", "MainStream", "rtsp://...", 1280, 720, 15)],
                         on_event=print)
    port = onvif.start()      # binds HTTP (and UDP 3702) and sends Hello (announce=False: later,
    ...                       # with onvif.announce())
    onvif.stop()              # sends Bye, closes everything

Stdout when run on its own, one line each, flushed:
    ONVIF http://ADDR:PORT/onvif/device_service
    HELLO_SENT                      (the WS-Discovery Hello went out; not with --no-discovery)
    BYE_SENT                        (after SIGTERM or SIGINT, the Bye went out)
    STOPPED                         (exit status 0)
Imported, HELLO_SENT and BYE_SENT go to the on_event callback instead. Nothing is printed per
request (--verbose logs requests and refusals to stderr); `stats()` counts them.

WS-Discovery (2005/04, SOAP 1.2, WS-Addressing 2004/08, as ONVIF uses it): a UDP socket bound to
port 3702 (SO_REUSEADDR, SO_REUSEPORT) joined to 239.255.255.250 on the interface of --address
(INADDR_ANY for 0.0.0.0), IP_MULTICAST_IF that address, TTL 1, IP_MULTICAST_ALL off (only its own
memberships). A Probe whose Types are empty or all among dn:NetworkVideoTransmitter and
tds:Device (QNames resolved through the probe's namespace declarations; an undeclared prefix is
matched by local name only) and whose Scopes (if any; MatchBy rfc3986 (default) or strcmp0) all
match, gets one unicast ProbeMatches to its source address and port (RelatesTo its MessageID).
A Resolve for this device's endpoint gets a ResolveMatches. Hello on start and Bye on stop go to
239.255.255.250:3702. Everything else, and its own messages, is ignored. Replies are sent once,
without the spec's random delay. With --address 0.0.0.0 the XAddrs carry the first non-loopback
IPv4 address. Endpoint: urn:uuid:<one uuid per instance> (--uuid to choose it). Scopes:
onvif://www.onvif.org/type/video_encoder, .../Profile/Streaming, .../hardware/MODEL, .../name/NAME,
.../mfr/MAKER (values percent-encoded).

SOAP 1.2 over HTTP: POST /onvif/device_service and /onvif/media_service (both answer every
operation below). With a user, "auth" operations need a WS-Security UsernameToken with a
PasswordDigest (base64 SHA-1 of nonce + Created + password), Created within 5 minutes of this
clock, the nonce unused in the last 10 minutes; PasswordText is refused. Refusal: HTTP 400, Fault
env:Sender / ter:NotAuthorized, "Sender not Authorized". Without a user nothing needs auth.
    tds:GetSystemDateAndTime   no auth   UTC time, DateTimeType NTP
    tds:GetCapabilities        no auth   Device and Media XAddrs, RTP_RTSP_TCP (Category honoured)
    tds:GetServices            no auth   device ver10 and media ver10 (capabilities on request)
    tds:GetDeviceInformation   auth      Manufacturer, Model, FirmwareVersion, SerialNumber, HardwareId
    trt:GetProfiles            auth      "main" (MainStream) and, with a substream, "sub" (SubStream)
    trt:GetProfile             auth      one of them by ProfileToken
    trt:GetStreamUri           auth      the profile's RTSP URL (credentials stripped; a 0.0.0.0 host
                                         replaced by the address the request came in on)
    trt:GetSnapshotUri         auth      the --snapshot-url, else Fault ter:ActionNotSupported
Faults (HTTP 400 for env:Sender, 500 for env:VersionMismatch): unknown operation -> env:Sender /
ter:ActionNotSupported; unknown profile token -> env:Sender / ter:InvalidArgVal / ter:NoProfile;
unsupported StreamSetup (multicast or HTTP) -> ter:InvalidArgVal / ter:InvalidStreamSetup; bad XML
-> ter:WellFormed; a SOAP 1.1 envelope -> env:VersionMismatch. Headers marked mustUnderstand other
than wsse:Security are not checked.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit, urlunsplit

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "d": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "dn": "http://www.onvif.org/ver10/network/wsdl",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
DISCOVERY_ACTION = NS["d"] + "/"
DISCOVERY_TO = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
ANONYMOUS = NS["wsa"] + "/role/anonymous"
MATCH_RFC3986 = NS["d"] + "/rfc3986"
MATCH_STRCMP0 = NS["d"] + "/strcmp0"
GROUP, WSD_PORT = "239.255.255.250", 3702
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)  # Linux

CREATED_WINDOW_S = 300  # Created within 5 minutes of this clock
NONCE_MEMORY_S = 600  # a nonce is refused again for 10 minutes
MAX_BODY = 1 << 20

OUR_TYPES = {(NS["dn"], "NetworkVideoTransmitter"), (NS["tds"], "Device")}


def esc(value):
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def q(ns, local):
    return f"{{{NS[ns]}}}{local}"


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


class Profile:
    """One media profile: its token and name, the RTSP URL and the encoder's settings."""

    def __init__(self, token, name, url, width, height, fps, bitrate_kbps=None, gop=None, quality=5):
        self.token, self.name, self.url = token, name, url
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.bitrate_kbps = int(bitrate_kbps or max(100, self.width * self.height * self.fps // 10 // 1000))
        self.gop = int(gop or 2 * self.fps)
        self.quality = quality


class Fault(Exception):
    """A SOAP 1.2 fault: code (env local name), subcodes (ter local names), reason, HTTP status."""

    def __init__(self, code, subcodes, reason, status=None):
        super().__init__(reason)
        self.code, self.subcodes, self.reason = code, list(subcodes), reason
        self.status = status or (400 if code == "Sender" else 500)


NOT_AUTHORIZED = ("Sender", ["NotAuthorized"], "Sender not Authorized")


# ---------------------------------------------------------------------------------------------
# XML in: parsed by namespace URI and local name, with every element's in-scope namespaces (for
# QName values such as d:Types).

def parse_xml(data):
    """(root, {element: {prefix: uri}}). Refuses DTDs (SOAP forbids them)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ET.ParseError("DTDs are not allowed")
    parser = ET.XMLPullParser(events=("start-ns", "start", "end"))
    parser.feed(data)
    parser.close()
    stack, pending, scopes, root = [{"xml": "http://www.w3.org/XML/1998/namespace"}], {}, {}, None
    for event, item in parser.read_events():
        if event == "start-ns":
            pending[item[0]] = item[1]
        elif event == "start":
            scope = dict(stack[-1])
            scope.update(pending)
            pending = {}
            stack.append(scope)
            scopes[item] = scope
            if root is None:
                root = item
        else:
            stack.pop()
    if root is None:
        raise ET.ParseError("no element")
    return root, scopes


def split_tag(tag):
    """('uri', 'local') of an ElementTree tag."""
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return "", tag


def text(elem, *path):
    """The stripped text of elem/path... (each (ns prefix, local)), or None."""
    for ns, local in path:
        if elem is None:
            return None
        elem = elem.find(q(ns, local))
    if elem is None:
        return None
    return (elem.text or "").strip()


def first_child(elem):
    for child in elem if elem is not None else ():
        if isinstance(child.tag, str):
            return child
    return None


def parse_datetime(value):
    """An xs:dateTime as an aware UTC datetime (no zone: UTC), or None."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", value or "")
    if not m:
        return None
    try:
        dt = datetime.datetime(*(int(g) for g in m.groups()[:6]), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    if m.group(7):
        dt += datetime.timedelta(microseconds=int(round(float(m.group(7)) * 1e6)))
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        dt -= sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return dt


def digest(nonce, created, password):
    """WS-Security UsernameToken PasswordDigest: base64(SHA-1(nonce + created + password))."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


# ---------------------------------------------------------------------------------------------
# Addresses.

def first_ipv4():
    """The first non-loopback IPv4 address of this host (127.0.0.1 if none)."""
    try:
        import fcntl
        for _idx, name in socket.if_nameindex():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                res = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
                ip = socket.inet_ntoa(res[20:24])
                if not ip.startswith("127."):
                    return ip
            except OSError:
                pass
            finally:
                s.close()
    except (ImportError, OSError):
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
            if not ip.startswith("127.") and ip != "0.0.0.0":
                return ip
    except OSError:
        pass
    return "127.0.0.1"


def public_url(url, local_ip):
    """`url` without credentials, its host 0.0.0.0 (or empty) replaced by local_ip."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("", "0.0.0.0"):
        host = local_ip
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scope_matches(probe, ours, match_by):
    """WS-Discovery scope matching of one probe scope against one of ours."""
    if match_by == MATCH_STRCMP0:
        return probe == ours
    a, b = urlsplit(probe), urlsplit(ours)
    if a.scheme.lower() != b.scheme.lower() or a.netloc.lower() != b.netloc.lower():
        return False
    pa = [unquote(s) for s in a.path.strip("/").split("/") if s]
    pb = [unquote(s) for s in b.path.strip("/").split("/") if s]
    return pb[:len(pa)] == pa


# ---------------------------------------------------------------------------------------------

class OnvifStandIn:
    """The ONVIF camera: WS-Discovery on UDP 3702 and the SOAP services on `http_port`."""

    def __init__(self, address, http_port, user, password, maker="Guardian Labs", model="StandIn-Cam 2",
                 name="Stand-in camera", serial=None, firmware="1.0.0-standin", profiles=(),
                 snapshot_url=None, device_uuid=None, discovery=True, on_event=None, verbose=False):
        if ":" in address:
            raise ValueError("the ONVIF stand-in is IPv4 only")
        if (user is None) != (password is None):
            raise ValueError("give both a user and a password, or neither")
        self.address, self.http_port = address, int(http_port)
        self.user, self.password = user, password
        self.maker, self.model, self.name, self.firmware = maker, model, name, firmware
        self.uuid = str(uuid.UUID(str(device_uuid))) if device_uuid else str(uuid.uuid4())
        self.serial = serial or "GS-" + self.uuid.replace("-", "")[:12].upper()
        self.profiles = list(profiles)
        if not self.profiles:
            raise ValueError("at least one profile")
        self.snapshot_url = snapshot_url
        self.discovery = discovery
        self.on_event = on_event or (lambda _line: None)
        self.verbose = verbose
        self.advertised = address if address != "0.0.0.0" else first_ipv4()
        self.instance_id = int(time.time())
        self.message_number = 0
        self.sent_ids = set()
        self.nonces = {}  # nonce bytes -> time first seen
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "auth_failures": 0, "faults": 0, "probes": 0, "probe_matches": 0,
                       "resolves": 0}
        self.stopping = threading.Event()
        self.udp = self.http = None
        self.threads = []
        self.hello_sent = False
        self.stopped = False

    # -- public ------------------------------------------------------------------------------
    @property
    def endpoint(self):
        return f"urn:uuid:{self.uuid}"

    @property
    def port(self):
        return self.http.server_address[1] if self.http else None

    def xaddr(self, host=None, service="device_service"):
        return f"http://{host or self.advertised}:{self.port}/onvif/{service}"

    @property
    def scopes(self):
        def enc(v):
            return quote(v, safe="")
        return " ".join([
            "onvif://www.onvif.org/type/video_encoder",
            "onvif://www.onvif.org/Profile/Streaming",
            f"onvif://www.onvif.org/hardware/{enc(self.model)}",
            f"onvif://www.onvif.org/name/{enc(self.name)}",
            f"onvif://www.onvif.org/mfr/{enc(self.maker)}",
        ])

    def stats(self):
        with self.lock:
            return dict(self.counts)

    def start(self, announce=True):
        """Binds and serves; sends Hello unless announce=False (then call announce()). The HTTP port."""
        standin = self

        class Handler(SoapHandler):
            owner = standin

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.http = Server((self.address, self.http_port), Handler)
        t = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.2},
                             name="onvif-http", daemon=True)
        t.start()
        self.threads.append(t)
        if self.discovery:
            self.udp = self._discovery_socket()
            t = threading.Thread(target=self._discovery_loop, name="onvif-wsd", daemon=True)
            t.start()
            self.threads.append(t)
            if announce:
                self.announce()
        return self.port

    def announce(self):
        """Sends the Hello (once)."""
        if self.udp is None or self.hello_sent:
            return
        try:
            self._send_multicast(self._envelope("Hello", DISCOVERY_TO, None,
                                                f"<d:Hello>{self._match_body()}</d:Hello>"))
        except OSError as e:
            sys.stderr.write(f"onvif-standin: cannot send the Hello to {GROUP}: {e}\n")
            return
        self.hello_sent = True
        self.on_event("HELLO_SENT")

    def stop(self):
        """Sends the Bye (if the Hello went out) and closes everything. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        if self.udp is not None and self.hello_sent:
            try:
                self._send_multicast(self._envelope(
                    "Bye", DISCOVERY_TO, None,
                    f"<d:Bye><wsa:EndpointReference><wsa:Address>{self.endpoint}</wsa:Address>"
                    "</wsa:EndpointReference></d:Bye>"))
                self.on_event("BYE_SENT")
            except OSError as e:
                self._log(f"cannot send the Bye: {e}")
        self.stopping.set()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        for t in self.threads:
            t.join(2)
        if self.udp is not None:
            self.udp.close()

    # -- logging and counting -----------------------------------------------------------------
    def _log(self, msg):
        if self.verbose:
            sys.stderr.write(f"onvif-standin: {msg}\n")
            sys.stderr.flush()

    def _count(self, key):
        with self.lock:
            self.counts[key] += 1

    # -- WS-Discovery ------------------------------------------------------------------------
    def _discovery_socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            except OSError:
                pass
        s.bind(("", WSD_PORT))
        iface = self.address  # 0.0.0.0 = INADDR_ANY
        try:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(iface)))
        except OSError as e:
            sys.stderr.write(f"onvif-standin: cannot join {GROUP} on {iface}: {e} "
                             "(unicast probes only)\n")
        if iface != "0.0.0.0":
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        except OSError:
            pass
        s.settimeout(0.25)
        return s

    def _send_multicast(self, data):
        self.udp.sendto(data, (GROUP, WSD_PORT))

    def _discovery_loop(self):
        while not self.stopping.is_set():
            try:
                data, src = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                time.sleep(0.1)
                continue
            try:
                reply = self._on_datagram(data, src)
            except Exception as e:  # a bad datagram must not end the loop
                self._log(f"datagram from {src}: {e!r}")
                continue
            if reply is not None:
                try:
                    self.udp.sendto(reply, src)
                except OSError as e:
                    self._log(f"cannot answer {src}: {e}")

    def _next_message(self):
        with self.lock:
            self.message_number += 1
            mid = f"urn:uuid:{uuid.uuid4()}"
            self.sent_ids.add(mid)
            return mid, self.message_number

    def _envelope(self, action, to, relates_to, body):
        mid, number = self._next_message()
        relates = f"<wsa:RelatesTo>{esc(relates_to)}</wsa:RelatesTo>" if relates_to else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<env:Envelope xmlns:env="{NS["env"]}" xmlns:wsa="{NS["wsa"]}" xmlns:d="{NS["d"]}" '
            f'xmlns:dn="{NS["dn"]}" xmlns:tds="{NS["tds"]}">'
            "<env:Header>"
            f"<wsa:MessageID>{mid}</wsa:MessageID>{relates}"
            f"<wsa:To>{esc(to)}</wsa:To>"
            f"<wsa:Action>{DISCOVERY_ACTION}{action}</wsa:Action>"
            f'<d:AppSequence InstanceId="{self.instance_id}" MessageNumber="{number}"/>'
            "</env:Header>"
            f"<env:Body>{body}</env:Body></env:Envelope>").encode()

    def _match_body(self):
        return (f"<wsa:EndpointReference><wsa:Address>{self.endpoint}</wsa:Address></wsa:EndpointReference>"
                "<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
                f"<d:Scopes>{esc(self.scopes)}</d:Scopes>"
                f"<d:XAddrs>{esc(self.xaddr())}</d:XAddrs>"
                "<d:MetadataVersion>1</d:MetadataVersion>")

    def _on_datagram(self, data, src):
        root, scopes = parse_xml(data)
        if root.tag != q("env", "Envelope"):
            return None
        header = root.find(q("env", "Header"))
        message_id = text(header, ("wsa", "MessageID"))
        with self.lock:
            if message_id in self.sent_ids:
                return None  # our own
        op = first_child(root.find(q("env", "Body")))
        if op is None:
            return None
        if op.tag == q("d", "Probe"):
            self._count("probes")
            if not self._probe_matches(op, scopes):
                self._log(f"probe from {src} not for us")
                return None
            self._count("probe_matches")
            self._log(f"probe from {src}: answering")
            return self._envelope("ProbeMatches", ANONYMOUS, message_id,
                                  f"<d:ProbeMatches><d:ProbeMatch>{self._match_body()}</d:ProbeMatch>"
                                  "</d:ProbeMatches>")
        if op.tag == q("d", "Resolve"):
            if text(op, ("wsa", "EndpointReference"), ("wsa", "Address")) != self.endpoint:
                return None
            self._count("resolves")
            return self._envelope("ResolveMatches", ANONYMOUS, message_id,
                                  f"<d:ResolveMatches><d:ResolveMatch>{self._match_body()}</d:ResolveMatch>"
                                  "</d:ResolveMatches>")
        return None

    def _probe_matches(self, probe, nsmaps):
        types = probe.find(q("d", "Types"))
        if types is not None:
            names = (types.text or "").split()
            scope = nsmaps.get(types, {})
            for qname in names:
                prefix, _, local = qname.rpartition(":")
                uri = scope.get(prefix)  # "" = the default namespace
                if uri is None and prefix:
                    ok = any(local == ours for _, ours in OUR_TYPES)  # undeclared prefix
                else:
                    ok = (uri, local) in OUR_TYPES
                if not ok:
                    return False
        wanted = probe.find(q("d", "Scopes"))
        if wanted is not None:
            match_by = wanted.get("MatchBy") or MATCH_RFC3986
            if match_by not in (MATCH_RFC3986, MATCH_STRCMP0):
                return False
            ours = self.scopes.split()
            for s in (wanted.text or "").split():
                if not any(scope_matches(s, o, match_by) for o in ours):
                    return False
        return True

    # -- SOAP ----------------------------------------------------------------------------------
    def soap(self, body, local_ip):
        """(HTTP status, response bytes) for one request body."""
        self._count("requests")
        try:
            return 200, self._soap(body, local_ip)
        except Fault as f:
            self._count("faults")
            self._log(f"fault {f.code}/{'/'.join(f.subcodes)}: {f.reason}")
            return f.status, self.fault_envelope(f)

    def _soap(self, body, local_ip):
        try:
            root, _ = parse_xml(body)
        except ET.ParseError as e:
            raise Fault("Sender", ["WellFormed"], f"Well-formed Error: {e}")
        if split_tag(root.tag)[1] != "Envelope":
            raise Fault("Sender", ["WellFormed"], "Not a SOAP envelope")
        if root.tag != q("env", "Envelope"):
            raise Fault("VersionMismatch", [], "SOAP 1.2 only", 500)
        header = root.find(q("env", "Header"))
        op = first_child(root.find(q("env", "Body")))
        if op is None:
            raise Fault("Sender", ["InvalidArgs"], "No operation in the body")
        uri, local = split_tag(op.tag)
        entry = OPERATIONS.get((uri, local))
        if entry is None:
            self._log(f"unknown operation {{{uri}}}{local}")
            raise Fault("Sender", ["ActionNotSupported"], f"Action {local} is not supported")
        method, needs_auth = entry
        if needs_auth and self.user is not None:
            why = self.check_auth(header)
            if why is not None:
                self._count("auth_failures")
                self._log(f"{local}: not authorized ({why})")
                raise Fault(*NOT_AUTHORIZED)
        self._log(f"{local}")
        return self.envelope(method(self, op, local_ip))

    def check_auth(self, header):
        """None if the header carries a valid UsernameToken digest, else why not."""
        token = None if header is None else header.find(q("wsse", "Security"))
        token = None if token is None else token.find(q("wsse", "UsernameToken"))
        if token is None:
            return "no UsernameToken"
        username = text(token, ("wsse", "Username"))
        pw = token.find(q("wsse", "Password"))
        if username is None or pw is None:
            return "no Username or Password"
        if pw.get("Type", "").strip() != PASSWORD_DIGEST:
            return "not a PasswordDigest"
        nonce_el = token.find(q("wsse", "Nonce"))
        created = text(token, ("wsu", "Created"))
        if created is None:
            created = text(token, ("wsse", "Created"))  # some old clients
        if nonce_el is None or not created:
            return "no Nonce or Created"
        encoding = nonce_el.get("EncodingType")
        if encoding is not None and not encoding.endswith("#Base64Binary"):
            return "Nonce not Base64Binary"
        try:
            nonce = base64.b64decode((nonce_el.text or "").strip(), validate=True)
        except ValueError:
            return "Nonce not base64"
        if not nonce:
            return "empty Nonce"
        when = parse_datetime(created)
        if when is None:
            return "Created not an xs:dateTime"
        if abs((now_utc() - when).total_seconds()) > CREATED_WINDOW_S:
            return "Created not within 5 minutes"
        expected = digest(nonce, created, self.password)
        user_ok = hmac.compare_digest(username.encode(), self.user.encode())
        pw_ok = hmac.compare_digest((pw.text or "").strip().encode(), expected.encode())
        if not (user_ok and pw_ok):
            return "wrong user or password"
        t = time.monotonic()
        with self.lock:
            for n, seen in list(self.nonces.items()):
                if t - seen > NONCE_MEMORY_S:
                    del self.nonces[n]
            if nonce in self.nonces:
                return "nonce replayed"
            self.nonces[nonce] = t
        return None

    @staticmethod
    def envelope(body):
        ns = " ".join(f'xmlns:{p}="{NS[p]}"' for p in ("env", "tds", "trt", "tt", "ter"))
        return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {ns}><env:Body>{body}'
                "</env:Body></env:Envelope>").encode()

    @classmethod
    def fault_envelope(cls, f):
        sub = ""
        for s in reversed(f.subcodes):
            sub = f"<env:Subcode><env:Value>ter:{s}</env:Value>{sub}</env:Subcode>"
        return cls.envelope(
            f"<env:Fault><env:Code><env:Value>env:{f.code}</env:Value>{sub}</env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{esc(f.reason)}</env:Text></env:Reason></env:Fault>')

    def _host(self, local_ip):
        return self.address if self.address != "0.0.0.0" else local_ip

    def _profile(self, op):
        token = text(op, ("trt", "ProfileToken"))
        for p in self.profiles:
            if p.token == token:
                return p
        raise Fault("Sender", ["InvalidArgVal", "NoProfile"], f"The requested profile token {token} does not exist")

    # -- device service --------------------------------------------------------------------------
    def op_get_system_date_and_time(self, _op, _ip):
        n = now_utc()
        dt = (f"<tt:Time><tt:Hour>{n.hour}</tt:Hour><tt:Minute>{n.minute}</tt:Minute>"
              f"<tt:Second>{n.second}</tt:Second></tt:Time><tt:Date><tt:Year>{n.year}</tt:Year>"
              f"<tt:Month>{n.month}</tt:Month><tt:Day>{n.day}</tt:Day></tt:Date>")
        return ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
                "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
                "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
                f"<tt:UTCDateTime>{dt}</tt:UTCDateTime><tt:LocalDateTime>{dt}</tt:LocalDateTime>"
                "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")

    def op_get_capabilities(self, op, ip):
        cats = {(c.text or "").strip() for c in op.findall(q("tds", "Category"))} or {"All"}
        unknown = cats - {"All", "Device", "Media", "Analytics", "Events", "Imaging", "PTZ"}
        if unknown:
            raise Fault("Sender", ["InvalidArgVal"], f"Unknown category {sorted(unknown)[0]}")
        want_dev = bool(cats & {"All", "Device"})
        want_media = bool(cats & {"All", "Media"})
        if not (want_dev or want_media):
            raise Fault("Sender", ["ActionNotSupported", "NoSuchService"],
                        "The requested WSDL service category is not supported by the device")
        host = self._host(ip)
        out = "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        if want_dev:
            out += (f"<tt:Device><tt:XAddr>{esc(self.xaddr(host))}</tt:XAddr>"
                    "<tt:System><tt:DiscoveryResolve>true</tt:DiscoveryResolve><tt:DiscoveryBye>true"
                    "</tt:DiscoveryBye><tt:RemoteDiscovery>false</tt:RemoteDiscovery>"
                    "<tt:SystemBackup>false</tt:SystemBackup><tt:SystemLogging>false</tt:SystemLogging>"
                    "<tt:FirmwareUpgrade>false</tt:FirmwareUpgrade><tt:SupportedVersions><tt:Major>2"
                    "</tt:Major><tt:Minor>0</tt:Minor></tt:SupportedVersions></tt:System></tt:Device>")
        if want_media:
            out += (f"<tt:Media><tt:XAddr>{esc(self.xaddr(host, 'media_service'))}</tt:XAddr>"
                    "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
                    "<tt:RTP_TCP>false</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
                    "</tt:StreamingCapabilities></tt:Media>")
        return out + "</tds:Capabilities></tds:GetCapabilitiesResponse>"

    def op_get_services(self, op, ip):
        include = (text(op, ("tds", "IncludeCapability")) or "false").lower() in ("true", "1")
        host = self._host(ip)
        dev_caps = media_caps = ""
        if include:
            dev_caps = ('<tds:Capabilities><tds:Capabilities><tds:Network/>'
                        '<tds:Security UsernameToken="true" HttpDigest="false"/>'
                        '<tds:System DiscoveryResolve="true" DiscoveryBye="true"/>'
                        "</tds:Capabilities></tds:Capabilities>")
            media_caps = ('<tds:Capabilities><trt:Capabilities SnapshotUri="'
                          f'{"true" if self.snapshot_url else "false"}">'
                          f'<trt:ProfileCapabilities MaximumNumberOfProfiles="{len(self.profiles)}"/>'
                          '<trt:StreamingCapabilities RTPMulticast="false" RTP_TCP="false" RTP_RTSP_TCP="true"/>'
                          "</trt:Capabilities></tds:Capabilities>")
        version = "<tds:Version><tt:Major>2</tt:Major><tt:Minor>0</tt:Minor></tds:Version>"
        return ("<tds:GetServicesResponse>"
                f"<tds:Service><tds:Namespace>{NS['tds']}</tds:Namespace>"
                f"<tds:XAddr>{esc(self.xaddr(host))}</tds:XAddr>{dev_caps}{version}</tds:Service>"
                f"<tds:Service><tds:Namespace>{NS['trt']}</tds:Namespace>"
                f"<tds:XAddr>{esc(self.xaddr(host, 'media_service'))}</tds:XAddr>{media_caps}{version}"
                "</tds:Service></tds:GetServicesResponse>")

    def op_get_device_information(self, _op, _ip):
        return ("<tds:GetDeviceInformationResponse>"
                f"<tds:Manufacturer>{esc(self.maker)}</tds:Manufacturer><tds:Model>{esc(self.model)}</tds:Model>"
                f"<tds:FirmwareVersion>{esc(self.firmware)}</tds:FirmwareVersion>"
                f"<tds:SerialNumber>{esc(self.serial)}</tds:SerialNumber>"
                f"<tds:HardwareId>{esc(self.model)}</tds:HardwareId>"
                "</tds:GetDeviceInformationResponse>")

    # -- media service -----------------------------------------------------------------------------
    def profile_xml(self, p, element="trt:Profiles"):
        src = self.profiles[0]  # the camera's own picture: the main stream's size
        return (f'<{element} token="{esc(p.token)}" fixed="true"><tt:Name>{esc(p.name)}</tt:Name>'
                '<tt:VideoSourceConfiguration token="vsc"><tt:Name>VideoSource</tt:Name>'
                f"<tt:UseCount>{len(self.profiles)}</tt:UseCount><tt:SourceToken>vsrc</tt:SourceToken>"
                f'<tt:Bounds x="0" y="0" width="{src.width}" height="{src.height}"/>'
                "</tt:VideoSourceConfiguration>"
                f'<tt:VideoEncoderConfiguration token="venc-{esc(p.token)}"><tt:Name>{esc(p.name)}</tt:Name>'
                "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
                f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height></tt:Resolution>"
                f"<tt:Quality>{p.quality}</tt:Quality>"
                f"<tt:RateControl><tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit>"
                "<tt:EncodingInterval>1</tt:EncodingInterval>"
                f"<tt:BitrateLimit>{p.bitrate_kbps}</tt:BitrateLimit></tt:RateControl>"
                f"<tt:H264><tt:GovLength>{p.gop}</tt:GovLength><tt:H264Profile>Baseline</tt:H264Profile></tt:H264>"
                "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address>"
                "</tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart>"
                "</tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout>"
                f"</tt:VideoEncoderConfiguration></{element}>")

    def op_get_profiles(self, _op, _ip):
        return ("<trt:GetProfilesResponse>" + "".join(self.profile_xml(p) for p in self.profiles)
                + "</trt:GetProfilesResponse>")

    def op_get_profile(self, op, _ip):
        return ("<trt:GetProfileResponse>" + self.profile_xml(self._profile(op), "trt:Profile")
                + "</trt:GetProfileResponse>")

    def op_get_stream_uri(self, op, ip):
        setup = op.find(q("trt", "StreamSetup"))
        stream = text(setup, ("tt", "Stream")) or "RTP-Unicast"
        protocol = text(setup, ("tt", "Transport"), ("tt", "Protocol")) or "RTSP"
        p = self._profile(op)
        if stream != "RTP-Unicast" or protocol not in ("RTSP", "UDP", "TCP"):
            raise Fault("Sender", ["InvalidArgVal", "InvalidStreamSetup"],
                        f"Stream {stream} over {protocol} is not supported (RTP-Unicast over RTSP only)")
        return ("<trt:GetStreamUriResponse><trt:MediaUri>"
                f"<tt:Uri>{esc(public_url(p.url, self._host(ip)))}</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
                "</trt:MediaUri></trt:GetStreamUriResponse>")

    def op_get_snapshot_uri(self, op, ip):
        self._profile(op)
        if not self.snapshot_url:
            raise Fault("Sender", ["ActionNotSupported"], "This camera has no snapshots")
        return ("<trt:GetSnapshotUriResponse><trt:MediaUri>"
                f"<tt:Uri>{esc(public_url(self.snapshot_url, self._host(ip)))}</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
                "</trt:MediaUri></trt:GetSnapshotUriResponse>")


# (namespace URI, local name) -> (method, needs auth)
OPERATIONS = {
    (NS["tds"], "GetSystemDateAndTime"): (OnvifStandIn.op_get_system_date_and_time, False),
    (NS["tds"], "GetCapabilities"): (OnvifStandIn.op_get_capabilities, False),
    (NS["tds"], "GetServices"): (OnvifStandIn.op_get_services, False),
    (NS["tds"], "GetDeviceInformation"): (OnvifStandIn.op_get_device_information, True),
    (NS["trt"], "GetProfiles"): (OnvifStandIn.op_get_profiles, True),
    (NS["trt"], "GetProfile"): (OnvifStandIn.op_get_profile, True),
    (NS["trt"], "GetStreamUri"): (OnvifStandIn.op_get_stream_uri, True),
    (NS["trt"], "GetSnapshotUri"): (OnvifStandIn.op_get_snapshot_uri, True),
}
PATHS = ("/onvif/device_service", "/onvif/media_service")


class SoapHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StandIn-ONVIF/1.0"
    owner = None  # the OnvifStandIn (set by a subclass)

    def log_message(self, fmt, *args):
        if self.owner.verbose:
            sys.stderr.write("onvif-standin: %s %s\n" % (self.address_string(), fmt % args))

    def _reply(self, status, body, ctype="application/soap+xml; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise ValueError("too large")
        n = int(self.headers.get("Content-Length", "0"))
        if n > MAX_BODY:
            raise ValueError("too large")
        return self.rfile.read(n)

    def do_POST(self):
        if self.path.split("?")[0] not in PATHS:
            self.close_connection = True
            return self._reply(404, b"not found\n", "text/plain")
        try:
            body = self._body()
        except ValueError:
            self.close_connection = True
            return self._reply(413, b"too large\n", "text/plain")
        status, out = self.owner.soap(body, self.connection.getsockname()[0])
        self._reply(status, out)

    def do_GET(self):
        self.close_connection = True
        if self.path.split("?")[0] in PATHS:
            self.send_response(405)
            self.send_header("Allow", "POST")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(404, b"not found\n", "text/plain")


# ---------------------------------------------------------------------------------------------

def parse_mode(text):
    m = re.fullmatch(r"(\d+)x(\d+)(?:@(\d+))?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad mode '{text}': want WIDTHxHEIGHT@FPS, e.g. 1280x720@15")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 15)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1", help="IPv4 address to serve on (0.0.0.0: all)")
    ap.add_argument("--http-port", type=int, default=8080, help="0: any free port")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--main-url", required=True)
    ap.add_argument("--main", type=parse_mode, default=(1280, 720, 15), help="WxH@FPS")
    ap.add_argument("--main-bitrate", type=int, help="kbit/s (default: 0.1 bit per pixel per frame)")
    ap.add_argument("--main-gop", type=int, help="frames (default: 2 s worth)")
    ap.add_argument("--sub-url")
    ap.add_argument("--sub", type=parse_mode, default=(640, 360, 15), help="WxH@FPS")
    ap.add_argument("--sub-bitrate", type=int)
    ap.add_argument("--sub-gop", type=int)
    ap.add_argument("--snapshot-url")
    ap.add_argument("--maker", default="Guardian Labs")
    ap.add_argument("--model", default="StandIn-Cam 2")
    ap.add_argument("--name", default="Stand-in camera")
    ap.add_argument("--serial")
    ap.add_argument("--firmware", default="1.0.0-standin")
    ap.add_argument("--uuid", help="the device's endpoint uuid (default: a new one)")
    ap.add_argument("--no-discovery", action="store_true", help="no WS-Discovery (HTTP only)")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    a = ap.parse_args()
    if (a.user is None) != (a.password is None):
        ap.error("give both --user and --password, or neither")
    profiles = [Profile("main", "MainStream", a.main_url, *a.main, a.main_bitrate, a.main_gop)]
    if a.sub_url:
        profiles.append(Profile("sub", "SubStream", a.sub_url, *a.sub, a.sub_bitrate, a.sub_gop))

    def say(line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        onvif = OnvifStandIn(a.address, a.http_port, a.user, a.password, a.maker, a.model, a.name, a.serial,
                             a.firmware, profiles, a.snapshot_url, a.uuid, not a.no_discovery, say, a.verbose)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        onvif.start(announce=False)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"onvif-standin: {e}\n")
        return 1
    say(f"ONVIF {onvif.xaddr()}")
    onvif.announce()
    while not stop.wait(0.5):
        pass
    onvif.stop()
    say("STOPPED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
