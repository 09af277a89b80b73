#!/usr/bin/python3
"""Camera stand-in: a live H.264 RTSP camera whose scene has a real person walking through it.

Run with Debian's /usr/bin/python3 (it has `gi`; see scripts/packages/video.txt):

    edge/tools/camera-standin.py [--port 8554] [--path /cam] [--width 1280 --height 720] [--fps 15]
        [--gop FRAMES] [--bitrate KBPS] [--photo PNG] [--schedule empty:6,person:4,empty:6] [--loop]
        [--count N] [--no-person] [--start first-client|launch] [--person-height 0.85]
        [--photo-crop L,T,R,B] [--address 127.0.0.1]
        [--user U --password P] [--sub-path /sub [--sub-width 640 --sub-height 360]
        [--sub-gop FRAMES] [--sub-bitrate KBPS]] [--onvif-port N [--maker M] [--model M]
        [--camera-name NAME]]
    edge/tools/camera-standin.py --scene NAME [--loop] [other options but the person's]
    edge/tools/camera-standin.py --scene-list

Scene: a static room (wall and floor gradients with a little texture; the detector finds nothing
in it) and, during the "person" stretches of the schedule, a photograph of a person (default
scikit-image's astronaut, $GUARDIAN_CACHE/photos/astronaut.png) sliding across the floor, entirely
inside the frame (its height --person-height of the frame's, aspect kept; successive stretches
alternate direction); absent during "empty" stretches. Stretches are seconds; without --loop the
schedule runs once and the scene then stays empty (the stream goes on).

--scene NAME instead streams a scene of edge/tools/scenes.py: photographed people and cars over
photographed backgrounds, with occlusion, night, lighting changes or swaying leaves (--scene-list
prints the catalogue with each scene's ground truth as JSON, then exits). It runs once (or with
--loop repeatedly) from the timeline's start, then stays at its empty end. The person options
(--photo, --photo-crop, --person-height, --schedule, --no-person) do not go with it.

Timeline: one wall-clock timeline for the whole process. It starts when the first RTSP client
connects (--start first-client, the default) or at launch (--start launch). Every client of every
path sees the same live scene: frames are drawn from the wall clock, encoded once by one x264enc,
and the same H.264 access units go to every main path (--count N serves /cam0../cam{N-1}, or
PATH0..PATH{N-1}, all identical) through shared gst-rtsp-server media. A client joining sees the
live stream from that moment; the encoder is asked for a key frame when a path's media starts, so
that a new stream starts at once instead of waiting up to one GOP (so GOPs are regular, every
--gop frames, except for the key frame forced when a path starts). Time stamps are regular (one
frame period apart). Nothing is encoded while no client is connected.

--user U --password P: every path (main and sub) needs RTSP digest authentication (gst-rtsp-server
RTSPAuth, DIGEST only; realm "GStreamer RTSP Server"): DESCRIBE/SETUP without credentials or with
wrong ones get 401 Unauthorized (OPTIONS is answered without). rtsp://U:P@HOST:PORT/PATH works with
rtspsrc. The URLs printed carry no credentials.

--sub-path /PATH: a substream of the same live scene at that path, scaled to --sub-width x
--sub-height (default 640x360, pixel aspect 1:1; a different aspect ratio is letterboxed) by a
second x264enc (same settings; key-int-max --sub-gop, default --gop; --sub-bitrate, default
--bitrate scaled by the ratio of the pixel counts). Both encoders encode while any path has a
client; each encoder's access units go only to its own path(s), and a path's media start asks
only its own encoder for a key frame.

--onvif-port N (0: any free port): also an ONVIF camera in this process (edge/tools/onvif_standin.py:
WS-Discovery on UDP 3702 joined on --address's interface, SOAP device and media services on
http://ADDR:N/onvif/device_service), IPv4 only. Its profiles: "main" = the main path (the first
with --count), "sub" = the substream if any; --user/--password are its WS-Security UsernameToken
credentials too (without --user its services need no authentication). --maker (default
"Guardian Labs"), --model (default "StandIn-Cam 2") and --camera-name (default "Stand-in camera")
are its device information and discovery scopes. It sends a WS-Discovery Hello once READY is out
and a Bye on stop.

Stdout, one line each, flushed (t = Unix time in seconds when the scene changed):
    READY rtsp://127.0.0.1:PORT/PATH [more URLs with --count]
    SUBSTREAM rtsp://127.0.0.1:PORT/SUBPATH        (with --sub-path, right after READY)
    ONVIF http://ADDR:ONVIFPORT/onvif/device_service  (with --onvif-port, after READY and SUBSTREAM;
                                                    with --address 0.0.0.0 ADDR is the host's first
                                                    non-loopback IPv4 address)
    HELLO_SENT                                      (with --onvif-port: the WS-Discovery Hello went out)
    TIMELINE_START t=<secs>
    PERSON_ENTER t=<secs> timeline=<secs since start>
    PERSON_EXIT t=<secs> timeline=<secs>
    ACTOR_ENTER kind=person|car actor=<index> cutout=<name> height=<frac> t=<secs> timeline=<secs>
    ACTOR_EXIT kind=... actor=... cutout=... height=... t=<secs> timeline=<secs>
    SCHEDULE_END t=<secs> timeline=<secs>          (without --loop; with --scene: the scene's end)
    BYE_SENT                                        (with --onvif-port, on stop: the Bye went out)
    STOPPED                                         (after SIGTERM or SIGINT; exit status 0)
ACTOR_* (with --scene only) is printed for every actor; PERSON_ENTER when a person appears in a
scene where none was, PERSON_EXIT when the last one leaves (so overlapping people make one pair).
Encoder: I420 (with --scene: RGB -> videoconvert -> I420) -> x264enc tune=zerolatency
speed-preset=ultrafast key-int-max=GOP option-string=scenecut=0 (regular GOPs), rtph264pay
config-interval=-1 pt=96 (with --sub-path: raw frames -> tee -> that encoder, and -> videoscale ->
the substream's x264enc). Port 0 picks a free port (the READY line has it).
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtsp, GstRtspServer, GstVideo  # noqa: E402,F401 (GstApp: appsrc methods)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("camera-standin: numpy is missing for /usr/bin/python3: apt-get install python3-numpy "
             "(scripts/setup.sh 40-gstreamer)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onvif_standin  # noqa: E402 (beside this file)
import scenes  # noqa: E402 (beside this file)

CACHE = os.environ.get("GUARDIAN_CACHE", "/var/cache/private-ai-guardian")


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def warn(msg):
    sys.stderr.write(f"camera-standin: {msg}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Pictures: everything is I420 (BT.709, as GStreamer's default for HD), planes as numpy arrays.

class I420:
    def __init__(self, y, u, v):
        self.y, self.u, self.v = y, u, v

    @property
    def width(self):
        return self.y.shape[1]

    @property
    def height(self):
        return self.y.shape[0]

    def tobytes(self):
        return self.y.tobytes() + self.u.tobytes() + self.v.tobytes()


def run_to_one_frame(description, caps, feed=None):
    """Runs `description ! videoconvert ! videoscale ! CAPS ! appsink`: (VideoInfo, bytes) of a frame."""
    pipe = Gst.parse_launch(
        f"{description} ! videoconvert ! videoscale ! {caps} ! appsink name=out sync=false max-buffers=1")
    if feed is not None:
        feed(pipe.get_by_name("in"))
    pipe.set_state(Gst.State.PLAYING)
    sample = pipe.get_by_name("out").try_pull_sample(10 * Gst.SECOND)
    if sample is None:
        msg = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
        pipe.set_state(Gst.State.NULL)
        detail = msg.parse_error()[0].message if msg else "no frame within 10 s"
        raise RuntimeError(f"could not make a picture ({caps}) from '{description}': {detail}")
    buf = sample.get_buffer()
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    ok, m = buf.map(Gst.MapFlags.READ)
    data = bytes(m.data)
    buf.unmap(m)
    pipe.set_state(Gst.State.NULL)
    return info, data


def run_to_i420(description, width, height, feed=None):
    """One frame of `description`, converted and scaled to I420 WxH."""
    info, data = run_to_one_frame(description, (
        f"video/x-raw,format=I420,width={width},height={height},colorimetry=bt709,pixel-aspect-ratio=1/1"), feed)
    planes = []
    for i, (w, h) in enumerate(((width, height), ((width + 1) // 2, (height + 1) // 2),
                                ((width + 1) // 2, (height + 1) // 2))):
        stride, off = info.stride[i], info.offset[i]
        rows = np.frombuffer(data, np.uint8, count=stride * h, offset=off).reshape(h, stride)
        planes.append(np.ascontiguousarray(rows[:, :w]))
    return I420(*planes)


def rgb_to_i420(rgb, width=None, height=None):
    """An RGB array as I420, scaled to WxH (default: its own size)."""
    h, w, _ = rgb.shape

    def feed(src):
        src.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format=RGB,width={w},height={h},framerate=1/1,pixel-aspect-ratio=1/1"))
        src.push_buffer(Gst.Buffer.new_wrapped(np.ascontiguousarray(rgb).tobytes()))
        src.end_of_stream()

    return run_to_i420("appsrc name=in format=time", width or w, height or h, feed)


def room(width, height):
    """The empty scene (scenes.room: a wall over a floor; the detector finds nothing in it) as I420."""
    return rgb_to_i420(scenes.room(width, height))


def photo_i420(path, crop, height):
    """The photo, cropped to `crop` (fractions left, top, right, bottom), scaled to `height` rows
    keeping its aspect ratio."""
    if not os.path.exists(path):
        raise RuntimeError(f"photo {path} not found (scripts/setup.sh 55-test-photos makes it)")
    loc = path.replace("\\", "\\\\").replace('"', '\\"')
    info, data = run_to_one_frame(f'filesrc location="{loc}" ! decodebin', "video/x-raw,format=RGB")
    rows = np.frombuffer(data, np.uint8, count=info.stride[0] * info.height).reshape(info.height, info.stride[0])
    rgb = rows[:, : info.width * 3].reshape(info.height, info.width, 3)
    x0, y0, x1, y1 = (int(round(f * n)) for f, n in zip(crop, (info.width, info.height) * 2))
    rgb = rgb[y0:y1, x0:x1]
    width = max(2, int(round(height * rgb.shape[1] / rgb.shape[0])) // 2 * 2)
    return rgb_to_i420(rgb, width, height)


# ---------------------------------------------------------------------------------------------
# The schedule.

def parse_schedule(text):
    segs = []
    for part in text.split(","):
        kind, _, secs = part.strip().partition(":")
        if kind not in ("empty", "person") or not secs:
            raise argparse.ArgumentTypeError(f"bad schedule part '{part}': want empty:SECS or person:SECS")
        try:
            d = float(secs)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad duration in '{part}'")
        if d <= 0:
            raise argparse.ArgumentTypeError(f"duration must be > 0 in '{part}'")
        segs.append((kind, d))
    return segs


def parse_crop(text):
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 4 or not (0 <= v[0] < v[2] <= 1 and 0 <= v[1] < v[3] <= 1):
        raise argparse.ArgumentTypeError(f"bad crop '{text}': want left,top,right,bottom fractions, e.g. 0,0,0.7,1")
    return v


class Clock:
    """The one wall-clock timeline, started once. Thread-safe for readers after start()."""

    def __init__(self, loop):
        self.loop = loop
        self.t0 = None
        self.lock = threading.Lock()

    def start(self, t0):
        with self.lock:
            if self.t0 is None:
                self.t0 = t0
                return True
            return False


class Timeline(Clock):
    """Which part of the schedule is shown at a wall-clock time."""

    def __init__(self, segments, loop):
        super().__init__(loop)
        self.segments = segments
        self.period = sum(d for _, d in segments)

    def at(self, now):
        """(kind, progress 0..1, person-stretch number) at `now`; empty before start/after end."""
        t0 = self.t0
        if t0 is None or now < t0:
            return "empty", 0.0, 0
        rel = now - t0
        if self.loop:
            cycles, rel = divmod(rel, self.period)
        elif rel >= self.period:
            return "empty", 0.0, 0
        else:
            cycles = 0
        person_count = sum(1 for k, _ in self.segments if k == "person")
        start = 0.0
        n = int(cycles) * person_count
        for kind, d in self.segments:
            if rel < start + d:
                return kind, (rel - start) / d, n
            start += d
            if kind == "person":
                n += 1
        return "empty", 0.0, n

    def transitions(self):
        """Yields (timeline secs, event) for every change, in order (forever with --loop)."""
        base = 0.0
        prev = "empty"
        while True:
            for kind, d in self.segments:
                if kind != prev:
                    yield base, "PERSON_ENTER" if kind == "person" else "PERSON_EXIT"
                prev = kind
                base += d
            if not self.loop:
                if prev == "person":
                    yield base, "PERSON_EXIT"
                yield base, "SCHEDULE_END"
                return


class SceneTimeline(Clock):
    """A scenes.Scene on the wall clock: the scene time of a wall-clock time, and its log."""

    def __init__(self, scene, loop):
        super().__init__(loop)
        self.scene = scene

    def scene_time(self, now):
        """Seconds into the scene: 0 before the start, its end after it (without --loop)."""
        t0 = self.t0
        if t0 is None or now < t0:
            return 0.0
        rel = now - t0
        return rel % self.scene.duration if self.loop else min(rel, self.scene.duration)

    def transitions(self):
        """Yields (timeline secs, event) for every actor entering or leaving, the first person
        entering and the last leaving, in order (exits before entries at equal times)."""
        changes = []
        for a in scenes.appearances(self.scene):
            fields = f"kind={a['kind']} actor={a['actor']} cutout={a['cutout']} height={a['height_frac']:.2f}"
            changes += [(a["start_s"], 1, a["kind"], "ACTOR_ENTER " + fields),
                        (a["end_s"], 0, a["kind"], "ACTOR_EXIT " + fields)]
        changes.sort(key=lambda c: (c[0], c[1], c[3]))
        base = 0.0
        while True:
            persons = 0
            for t, entering, kind, line in changes:
                yield base + t, line
                if kind == "person":
                    persons += 1 if entering else -1
                    if persons == (1 if entering else 0):
                        yield base + t, "PERSON_ENTER" if entering else "PERSON_EXIT"
            base += self.scene.duration
            if not self.loop:
                yield base, "SCHEDULE_END"
                return


# ---------------------------------------------------------------------------------------------
# The scene, the one encoder and the RTSP paths.

class StandIn:
    def __init__(self, args):
        self.args = args
        self.w, self.h, self.fps = args.width, args.height, args.fps
        if args.scene is not None:
            self.timeline = SceneTimeline(scenes.SCENES[args.scene], args.loop)
            self.renderer = scenes.Renderer(self.timeline.scene, self.w, self.h)
        else:
            self.renderer = None
            self.timeline = Timeline(args.schedule, args.loop)
            self.bg = room(self.w, self.h)
            height = int(round(self.h * args.person_height)) // 2 * 2
            self.person = None if args.no_person else photo_i420(args.photo, args.photo_crop, height)
            if self.person is not None and self.person.width > self.w:
                raise RuntimeError("the photo is wider than the frame: lower --person-height or crop it")
        # a path's appsrc -> {"pipe": its pipeline, "offset": its time stamp offset, "stream": "main"|"sub"}
        self.medias = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.events = None  # the timeline's transitions, an iterator
        self.pending = None  # the next transition to print
        self.frames = 0
        self._build_encoder()

    # -- encoder --------------------------------------------------------------------------
    def _build_encoder(self):
        a = self.args
        if self.renderer is None:
            raw = (f"caps=video/x-raw,format=I420,width={self.w},height={self.h},framerate={self.fps}/1,"
                   "pixel-aspect-ratio=1/1,colorimetry=bt709,interlace-mode=progressive ! ")
        else:
            raw = (f"caps=video/x-raw,format=RGB,width={self.w},height={self.h},framerate={self.fps}/1,"
                   "pixel-aspect-ratio=1/1,interlace-mode=progressive ! "
                   "videoconvert ! video/x-raw,format=I420,colorimetry=bt709 ! ")
        main = ("queue max-size-buffers=2 leaky=downstream ! "
                f"x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max={a.gop} "
                f"bitrate={a.bitrate} option-string=scenecut=0 ! "
                "video/x-h264,stream-format=byte-stream,alignment=au ! "
                "appsink name=h264 emit-signals=true sync=false max-buffers=8 drop=false")
        if a.sub_path is None:
            branches = main
        else:
            # The same raw frames, scaled, into a second encoder of their own.
            branches = (
                "tee name=t  t. ! " + main + "  t. ! queue max-size-buffers=2 leaky=downstream ! "
                f"videoscale ! video/x-raw,width={a.sub_width},height={a.sub_height},pixel-aspect-ratio=1/1 ! "
                f"x264enc name=subenc tune=zerolatency speed-preset=ultrafast key-int-max={a.sub_gop} "
                f"bitrate={a.sub_bitrate} option-string=scenecut=0 ! "
                "video/x-h264,stream-format=byte-stream,alignment=au ! "
                "appsink name=subh264 emit-signals=true sync=false max-buffers=8 drop=false")
        self.enc_pipe = Gst.parse_launch(
            "appsrc name=raw is-live=true format=time block=false max-bytes=0 " + raw + branches)
        self.raw = self.enc_pipe.get_by_name("raw")
        self.encoders = {"main": self.enc_pipe.get_by_name("enc")}
        self.enc_pipe.get_by_name("h264").connect("new-sample", self._on_h264, "main")
        if a.sub_path is not None:
            self.encoders["sub"] = self.enc_pipe.get_by_name("subenc")
            self.enc_pipe.get_by_name("subh264").connect("new-sample", self._on_h264, "sub")
        bus = self.enc_pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_encoder_error)
        self.enc_pipe.set_state(Gst.State.PLAYING)

    def _on_encoder_error(self, _bus, msg):
        err, dbg = msg.parse_error()
        warn(f"encoder error: {err.message} ({dbg})")
        self.stop(1)

    def _on_h264(self, sink, stream):
        """An access unit of the encoder of `stream` ("main" or "sub"): to that stream's paths."""
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self.lock:
            targets = [(src, state) for src, state in self.medias.items() if state["stream"] == stream]
        for src, state in targets:
            if state["offset"] is None:
                if not key:
                    continue
                # The path's first buffer: its pipeline's running time now; later buffers keep
                # the encoder's regular spacing from there.
                pipe = state["pipe"]
                clock = pipe.get_clock()
                now = clock.get_time() - pipe.get_base_time() if clock is not None else 0
                state["offset"] = now - buf.pts
            # A new buffer sharing the memory, stamped on the path's own running time.
            out = buf.copy_region(Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.MEMORY, 0, buf.get_size())
            out.pts = out.dts = max(0, buf.pts + state["offset"])
            out.duration = buf.duration
            if src.push_buffer(out) != Gst.FlowReturn.OK:
                self._forget(src)
        return Gst.FlowReturn.OK

    def request_key_frame(self, stream=None):
        """Asks the encoder of `stream` (None: every encoder) for a key frame."""
        for name, enc in self.encoders.items():
            if stream is None or name == stream:
                ev = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0)
                enc.get_static_pad("src").send_event(ev)

    # -- frames -----------------------------------------------------------------------------
    def compose(self, now):
        if self.renderer is not None:
            return self.renderer.frame(self.timeline.scene_time(now)).tobytes()
        kind, progress, n = self.timeline.at(now)
        if kind != "person" or self.person is None:
            return self.bg.tobytes()
        p = self.person
        margin = int(self.w * 0.02) // 2 * 2
        span = max(0, self.w - p.width - 2 * margin)
        frac = progress if n % 2 == 0 else 1.0 - progress  # alternate directions
        x = (margin + int(span * frac)) // 2 * 2
        y = max(0, (self.h - p.height - int(self.h * 0.04))) // 2 * 2
        fy, fu, fv = self.bg.y.copy(), self.bg.u.copy(), self.bg.v.copy()
        fy[y:y + p.height, x:x + p.width] = p.y
        fu[y // 2:(y + p.height) // 2, x // 2:(x + p.width) // 2] = p.u
        fv[y // 2:(y + p.height) // 2, x // 2:(x + p.width) // 2] = p.v
        return fy.tobytes() + fu.tobytes() + fv.tobytes()

    def frame_loop(self):
        period = 1.0 / self.fps
        first_t = next_t = time.monotonic()
        was_idle = True
        while not self.stopping.is_set():
            now_m = time.monotonic()
            if now_m < next_t:
                self.stopping.wait(next_t - now_m)
                continue
            behind = int((now_m - next_t) / period)
            slot = next_t + behind * period  # skip frames rather than fall behind
            next_t = slot + period
            with self.lock:
                idle = not self.medias
            if idle:
                was_idle = True
                continue
            if was_idle:
                self.request_key_frame()
                was_idle = False
            buf = Gst.Buffer.new_wrapped(self.compose(time.time()))
            # Regular time stamps, one frame period apart (gaps only where frames were skipped).
            buf.pts = buf.dts = int(round((slot - first_t) * Gst.SECOND))
            buf.duration = Gst.SECOND // self.fps
            if self.raw.push_buffer(buf) != Gst.FlowReturn.OK:
                if not self.stopping.is_set():
                    warn("the encoder refused a frame")
            self.frames += 1

    # -- the timeline's log -----------------------------------------------------------------
    def start_timeline(self, t0):
        if self.timeline.start(t0):
            say(f"TIMELINE_START t={t0:.6f}")

    def log_transitions(self):
        t0 = self.timeline.t0
        if t0 is not None and not self.args.no_person:
            if self.events is None:
                self.events = self.timeline.transitions()
                self.pending = next(self.events, None)
            now = time.time()
            while self.pending is not None and t0 + self.pending[0] <= now:
                rel, what = self.pending
                say(f"{what} t={t0 + rel:.6f} timeline={rel:.3f}")
                self.pending = next(self.events, None)
        return not self.stopping.is_set()

    # -- RTSP ---------------------------------------------------------------------------------
    def on_media_configure(self, _factory, media, stream):
        src = media.get_element().get_by_name_recurse_up("src")
        with self.lock:
            self.medias[src] = {"pipe": media.get_element(), "offset": None, "stream": stream}
        media.connect("unprepared", lambda _m: self._forget(src))
        self.request_key_frame(stream)

    def _forget(self, src):
        with self.lock:
            self.medias.pop(src, None)

    def stop(self, status=0):
        if not self.stopping.is_set():
            self.stopping.set()
            self.status = status
            self.loop.quit()
        return GLib.SOURCE_REMOVE

    def run(self):
        a = self.args
        self.status = 0
        self.loop = GLib.MainLoop()
        server = GstRtspServer.RTSPServer()
        server.set_address(a.address)
        server.set_service(str(a.port))
        mounts = server.get_mount_points()
        paths = [a.path] if a.count == 1 else [f"{a.path}{i}" for i in range(a.count)]
        permissions = None
        if a.user is not None:
            # Every path needs the user's credentials (RTSP digest authentication).
            auth = GstRtspServer.RTSPAuth()
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
            auth.add_digest(a.user, a.password, token)
            server.set_auth(auth)
            permissions = GstRtspServer.RTSPPermissions()
            for perm in (GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT):
                permissions.add_permission_for_role("user", perm, True)
        streams = [(path, "main") for path in paths]
        if a.sub_path is not None:
            streams.append((a.sub_path, "sub"))
        for path, stream in streams:
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(
                "( appsrc name=src is-live=true format=time "
                "caps=video/x-h264,stream-format=byte-stream,alignment=au ! "
                "h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )")
            factory.set_shared(True)
            if permissions is not None:
                factory.set_permissions(permissions)
            factory.connect("media-configure", self.on_media_configure, stream)
            mounts.add_factory(path, factory)
        if a.start == "first-client":
            server.connect("client-connected", lambda *_: self.start_timeline(time.time()))
        if server.attach(None) == 0:
            warn(f"cannot listen on {a.address}:{a.port}")
            return 1
        port = server.get_bound_port()
        host = a.address if ":" not in a.address else f"[{a.address}]"
        onvif = None
        if a.onvif_port is not None:
            profiles = [onvif_standin.Profile("main", "MainStream", f"rtsp://{host}:{port}{paths[0]}",
                                              self.w, self.h, self.fps, a.bitrate, a.gop)]
            if a.sub_path is not None:
                profiles.append(onvif_standin.Profile("sub", "SubStream", f"rtsp://{host}:{port}{a.sub_path}",
                                                      a.sub_width, a.sub_height, self.fps, a.sub_bitrate,
                                                      a.sub_gop))
            try:
                onvif = onvif_standin.OnvifStandIn(
                    a.address, a.onvif_port, a.user, a.password, a.maker, a.model, a.camera_name,
                    profiles=profiles, on_event=say)
                onvif.start(announce=False)
            except (OSError, ValueError) as e:
                warn(f"cannot serve ONVIF on {a.address}:{a.onvif_port}: {e}")
                self.enc_pipe.set_state(Gst.State.NULL)
                return 1
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, self.stop)
        threading.Thread(target=self.frame_loop, name="frames", daemon=True).start()
        GLib.timeout_add(20, self.log_transitions)
        say("READY " + " ".join(f"rtsp://{host}:{port}{p}" for p in paths))
        if a.sub_path is not None:
            say(f"SUBSTREAM rtsp://{host}:{port}{a.sub_path}")
        if onvif is not None:
            say(f"ONVIF {onvif.xaddr()}")
            onvif.announce()  # HELLO_SENT
        if a.start == "launch":
            self.start_timeline(time.time())
        self.loop.run()
        self.stopping.set()
        if onvif is not None:
            onvif.stop()  # BYE_SENT
        self.raw.end_of_stream()
        self.enc_pipe.set_state(Gst.State.NULL)
        say("STOPPED")
        return self.status


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554, help="0: any free port")
    ap.add_argument("--path", default="/cam", help="mount path; with --count N the prefix of PATH0..")
    ap.add_argument("--count", type=int, default=1, help="serve N identical paths")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--gop", type=int, help="key frame interval in frames (default: 2 s worth)")
    ap.add_argument("--bitrate", type=int, help="kbit/s (default: about 0.1 bit per pixel per frame)")
    ap.add_argument("--photo", default=os.path.join(CACHE, "photos", "astronaut.png"))
    ap.add_argument("--person-height", type=float, default=0.85,
                    help="the photo's height as a fraction of the frame's (0.85: NanoDet finds the astronaut at 0.5-0.6)")
    ap.add_argument("--photo-crop", type=parse_crop, default=(0.0, 0.0, 1.0, 1.0),
                    help="part of the photo to use: left,top,right,bottom as fractions (default: all)")
    ap.add_argument("--schedule", type=parse_schedule, default=parse_schedule("empty:6,person:4,empty:6"))
    ap.add_argument("--loop", action="store_true", help="repeat the schedule forever")
    ap.add_argument("--no-person", action="store_true", help="an empty scene, whatever the schedule")
    ap.add_argument("--start", choices=["first-client", "launch"], default="first-client",
                    help="when the timeline starts")
    ap.add_argument("--scene", choices=list(scenes.SCENES), help="stream this scene of edge/tools/scenes.py")
    ap.add_argument("--scene-list", action="store_true", help="print the scenes with their ground truth as JSON")
    ap.add_argument("--user", help="RTSP (digest) and ONVIF user: every path then needs it")
    ap.add_argument("--password", help="the --user's password")
    ap.add_argument("--sub-path", help="also serve a scaled substream of the same scene at this path")
    ap.add_argument("--sub-width", type=int, default=640)
    ap.add_argument("--sub-height", type=int, default=360)
    ap.add_argument("--sub-gop", type=int, help="the substream's key frame interval (default: --gop)")
    ap.add_argument("--sub-bitrate", type=int, help="the substream's kbit/s (default: --bitrate scaled to its size)")
    ap.add_argument("--onvif-port", type=int, help="also be an ONVIF camera (WS-Discovery, SOAP on this port; 0: any)")
    ap.add_argument("--maker", default="Guardian Labs", help="ONVIF manufacturer")
    ap.add_argument("--model", default="StandIn-Cam 2", help="ONVIF model")
    ap.add_argument("--camera-name", default="Stand-in camera", help="ONVIF name (a discovery scope)")
    a = ap.parse_args()
    if a.scene_list:
        json.dump([scenes.describe(s) for s in scenes.SCENES.values()], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if a.scene is not None:
        for opt in ("photo", "photo_crop", "person_height", "schedule", "no_person"):
            if getattr(a, opt) != ap.get_default(opt):
                ap.error(f"--{opt.replace('_', '-')} does not go with --scene")
    if a.width < 64 or a.height < 64 or a.width % 2 or a.height % 2:
        ap.error("--width and --height must be even and at least 64")
    if not 1 <= a.fps <= 120:
        ap.error("--fps must be 1..120")
    if a.count < 1:
        ap.error("--count must be at least 1")
    if not 0.1 <= a.person_height <= 1.0:
        ap.error("--person-height must be in 0.1..1")
    if (a.user is None) != (a.password is None):
        ap.error("give both --user and --password, or neither")
    if a.user is not None and (not a.user or ":" in a.user):
        ap.error("--user must be non-empty, without ':'")
    a.gop = a.gop or 2 * a.fps
    a.bitrate = a.bitrate or max(200, a.width * a.height * a.fps // 10 // 1000)
    if not a.path.startswith("/"):
        a.path = "/" + a.path
    if a.sub_path is not None:
        if not a.sub_path.startswith("/"):
            a.sub_path = "/" + a.sub_path
        mains = [a.path] if a.count == 1 else [f"{a.path}{i}" for i in range(a.count)]
        if a.sub_path in mains:
            ap.error("--sub-path must differ from the main path(s)")
        if a.sub_width < 64 or a.sub_height < 64 or a.sub_width % 2 or a.sub_height % 2:
            ap.error("--sub-width and --sub-height must be even and at least 64")
        a.sub_gop = a.sub_gop or a.gop
        a.sub_bitrate = a.sub_bitrate or max(100, a.bitrate * a.sub_width * a.sub_height // (a.width * a.height))
    if a.onvif_port is not None and ":" in a.address:
        ap.error("--onvif-port needs an IPv4 --address")
    Gst.init(None)
    try:
        standin = StandIn(a)
    except RuntimeError as e:
        warn(str(e))
        return 1
    return standin.run()


if __name__ == "__main__":
    sys.exit(main())
