#!/usr/bin/python3
"""Composed test scenes: photographed people and cars moving over photographed backgrounds.

The camera stand-in (`camera-standin.py --scene NAME`) streams these scenes and the offline
renderer (`render-scenes.py`) writes them as raw frames for the detector's recall benchmark. Both
import this module; it needs numpy only. The photographs are $GUARDIAN_CACHE/photos/NAME.npy
(RGB uint8 arrays), made by scripts/setup.sh 56-scene-photos from registry packages (see that
script for where each comes from and its licence).

A scene (`Scene`, catalogue `SCENES`) is a background (photographs filling or tiled over parts of
the frame, plain colours, or the stand-in's synthetic room), actors (a rectangular crop of a
photograph, `CUTOUTS`, scaled to a fraction of the frame's height and moved along keyframes),
foreground layers drawn over the actors (occlusion), and effects: moving foliage ("leaves"), a
brightness ramp ("lighting") and a dark, low-contrast, noisy "night" look. Frames are a function of
the scene time only, deterministic (seeded by the scene's name), at any size. An actor is entirely
inside the frame from its first keyframe to its last and absent otherwise; those are its
appearance's start and end, its ground truth (`appearances`).

Standalone:

    edge/tools/scenes.py --list                     # the catalogue with ground truth, as JSON
    edge/tools/scenes.py --png OUT.png NAME SECS [--width 1280 --height 720]

From Python:

    import scenes
    r = scenes.Renderer(scenes.SCENES["street-grace"], 1280, 720)
    rgb = r.frame(10.0)                 # H x W x 3 uint8 (a buffer reused by the next call)
    scenes.appearances(scenes.SCENES["street-grace"])
"""

import argparse
import hashlib
import json
import os
import struct
import sys
import zlib
from dataclasses import asdict, dataclass

import numpy as np

CACHE = os.environ.get("GUARDIAN_CACHE", "/var/cache/private-ai-guardian")
PHOTOS = os.path.join(CACHE, "photos")


# ---------------------------------------------------------------------------------------------
# The parts of a scene.

@dataclass(frozen=True)
class Cutout:
    """The part of a photograph (crop: left, top, right, bottom fractions) that shows one actor."""
    photo: str  # $GUARDIAN_CACHE/photos/PHOTO.npy
    crop: tuple
    kind: str  # "person" or "car"


CUTOUTS = {
    "grace": Cutout("grace_hopper", (0.0, 0.03, 1.0, 1.0), "person"),
    "astronaut": Cutout("astronaut", (0.03, 0.02, 0.72, 1.0), "person"),
    "cameraman": Cutout("camera", (0.0, 0.12, 0.68, 1.0), "person"),
    "zidane": Cutout("zidane", (0.09, 0.27, 0.58, 1.0), "person"),
    "ancelotti": Cutout("zidane", (0.585, 0.05, 0.89, 1.0), "person"),
    "bus-man-coat": Cutout("bus", (0.05, 0.355, 0.32, 0.845), "person"),  # left, fur coat
    "bus-man-black": Cutout("bus", (0.27, 0.365, 0.43, 0.80), "person"),  # black coat, sunglasses
    "car-black": Cutout("car1", (0.04, 0.27, 0.94, 0.72), "car"),  # faces left
    "car-silver": Cutout("car2", (0.09, 0.34, 0.93, 0.80), "car"),  # faces right
}


@dataclass(frozen=True)
class Layer:
    """A rectangle of the frame (box: left, top, right, bottom fractions) painted with a photograph
    (`fill`: scaled to cover the box, centred; `tile`: repeated, mirrored so that the copies join,
    each copy `tile` of the frame's height tall), or a plain `color`, or `photo="room"`: the
    synthetic room. The photograph is first turned by `turn` quarter turns (counter-clockwise);
    `tint` multiplies its RGB (for the grey textures)."""
    box: tuple = (0.0, 0.0, 1.0, 1.0)
    photo: str = None
    mode: str = "fill"
    tile: float = 0.5
    tint: tuple = (1.0, 1.0, 1.0)
    color: tuple = None
    turn: int = 0


@dataclass(frozen=True)
class Actor:
    """A cutout `height` of the frame's height tall (aspect kept), its bottom edge at `ground` (a
    fraction of the frame's height), moving through `path`: keyframes (seconds, position), position
    0 = at the left edge, 1 = at the right edge, linear in between. Visible from the first keyframe
    to the last."""
    cutout: str
    height: float
    path: tuple
    ground: float = 0.96


@dataclass(frozen=True)
class Leaves:
    """Foliage (tinted grass texture in blob shapes) swaying inside `box` (fractions)."""
    box: tuple
    clusters: int = 6


@dataclass(frozen=True)
class Night:
    """Dark, low contrast, noisy: pixel values mapped into lo..hi, plus Gaussian noise (sigma)."""
    lo: int = 8
    hi: int = 70
    noise: float = 5.0


@dataclass(frozen=True)
class Scene:
    name: str
    description: str
    duration: float
    background: tuple  # Layers, in drawing order
    actors: tuple = ()
    foreground: tuple = ()  # Layers over the actors
    leaves: tuple = ()
    lighting: tuple = ()  # keyframes (seconds, brightness gain), linear in between; () = 1 always
    night: Night = None


def walk(start, seconds, rightward=True, cutout="grace", height=0.5, ground=0.96):
    """An actor crossing the frame at constant speed, from `start` for `seconds`."""
    a, b = (0.0, 1.0) if rightward else (1.0, 0.0)
    return Actor(cutout, height, ((start, a), (start + seconds, b)), ground)


WALL = (1.12, 0.82, 0.68)  # brick.png is grey; turned, its paving looks like a wall
STREET = (  # a brick wall, a kerb and a gravel pavement
    Layer((0.0, 0.0, 1.0, 0.62), "brick", "tile", 0.62, WALL, turn=1),
    Layer((0.0, 0.62, 1.0, 0.655), color=(168, 166, 160)),
    Layer((0.0, 0.655, 1.0, 1.0), "gravel", "tile", 0.30, (0.98, 0.94, 0.88)),
)
BRICK = (Layer(photo="brick", tint=WALL, turn=1),)
COFFEE = (Layer(photo="coffee"),)
ROCKET = (Layer(photo="rocket"),)
ROOM = (Layer(photo="room"),)

SCENES = {s.name: s for s in (
    Scene("street-grace", "Grace Hopper (50%) crosses a street twice", 36.0, STREET,
          (walk(8, 5, True, "grace", 0.5), walk(22, 5, False, "grace", 0.5))),
    Scene("brick-cameraman", "the cameraman (40%) crosses in front of a brick wall twice", 36.0, BRICK,
          (walk(8, 5, True, "cameraman", 0.4), walk(22, 5, False, "cameraman", 0.4))),
    Scene("cafe-astronaut", "the astronaut (45%) crosses a café table twice", 36.0, COFFEE,
          (walk(8, 5, False, "astronaut", 0.45), walk(22, 5, True, "astronaut", 0.45))),
    Scene("night-zidane", "Zidane (55%) crosses a street at night twice", 36.0, STREET,
          (walk(8, 5, True, "zidane", 0.55), walk(22, 5, False, "zidane", 0.55)), night=Night()),
    Scene("occluded", "a man (60%) walks behind a low wall hiding his lower third, twice", 36.0, STREET,
          (walk(8, 5, True, "bus-man-coat", 0.6), walk(22, 5, False, "bus-man-coat", 0.6)),
          foreground=(Layer((0.0, 0.76, 1.0, 1.0), "brick", "tile", 0.24, (0.95, 0.78, 0.7), turn=1),)),
    Scene("small-person", "a distant man (15%) crosses the pavement twice", 36.0, STREET,
          (walk(8, 6, True, "bus-man-black", 0.15, 0.80), walk(22, 6, False, "bus-man-black", 0.15, 0.80))),
    Scene("still-person", "Ancelotti (50%) walks in, stands still 20 s, walks out", 46.0, STREET,
          (Actor("ancelotti", 0.5, ((8, 0.0), (11, 0.4), (31, 0.4), (34, 1.0))),)),
    Scene("two-people", "two people (55%, 45%) walk side by side, later a third alone", 40.0, ROCKET,
          (Actor("bus-man-coat", 0.55, ((8, 0.0), (14, 0.4))), Actor("grace", 0.45, ((8, 0.62), (14, 1.0)), 0.9),
           walk(25, 5, True, "astronaut", 0.5))),
    Scene("empty-lighting", "an empty room: the light dims slowly, then comes back at once", 40.0, ROOM,
          lighting=((0, 1.0), (8, 1.0), (18, 0.45), (28, 0.45), (28.5, 1.0))),
    Scene("empty-leaves", "an empty street with foliage swaying over the wall", 36.0, STREET,
          leaves=(Leaves((0.0, 0.0, 0.35, 0.45)), Leaves((0.7, 0.05, 1.0, 0.6), 5))),
    Scene("car-crossing", "cars only: a silver car crosses, later a black one the other way", 36.0, STREET,
          (walk(8, 5, True, "car-silver", 0.32, 0.97), walk(22, 5, False, "car-black", 0.28, 0.97))),
)}


# ---------------------------------------------------------------------------------------------
# Ground truth.

def _actor_box(actor, t, width, height):
    """(x0, y0, x1, y1) in pixels of the actor at time t (inside its keyframes)."""
    ph, pw = _patch_size(actor, width, height)
    ts = [k[0] for k in actor.path]
    pos = float(np.interp(t, ts, [k[1] for k in actor.path]))
    x0 = int(round(pos * (width - pw)))
    y1 = min(height, int(round(actor.ground * height)))
    return x0, y1 - ph, x0 + pw, y1


def _visible(scene, actor, width=1280, height=720):
    """The smallest fraction of the actor's area that no foreground layer or foliage covers,
    over its appearance (sampled)."""
    boxes = [layer.box for layer in scene.foreground] + [leaves.box for leaves in scene.leaves]
    t0, t1 = actor.path[0][0], actor.path[-1][0]
    least = 1.0
    for t in np.linspace(t0, t1, 21):
        x0, y0, x1, y1 = _actor_box(actor, t, width, height)
        mask = np.ones((y1 - y0, x1 - x0), bool)
        for l, tp, r, b in boxes:
            bx0, by0, bx1, by1 = int(l * width), int(tp * height), int(r * width), int(b * height)
            mask[max(0, by0 - y0):max(0, by1 - y0), max(0, bx0 - x0):max(0, bx1 - x0)] = False
        least = min(least, float(mask.mean()))
    return round(least, 3)


def appearances(scene):
    """The scene's ground truth: one dict per actor, in start order: actor (its index in
    scene.actors), kind (person|car), cutout, start_s, end_s, height_frac, visible_frac (the least
    fraction of it left uncovered)."""
    out = [{"actor": i, "kind": CUTOUTS[a.cutout].kind, "cutout": a.cutout, "start_s": float(a.path[0][0]),
            "end_s": float(a.path[-1][0]), "height_frac": a.height, "visible_frac": _visible(scene, a)}
           for i, a in enumerate(scene.actors)]
    return sorted(out, key=lambda a: (a["start_s"], a["end_s"]))


def describe(scene):
    """The scene as a JSON-able dict: name, description, duration_s, appearances."""
    return {"name": scene.name, "description": scene.description, "duration_s": scene.duration,
            "appearances": appearances(scene)}


def photos_used(scene):
    """The photo names (files in PHOTOS without .npy) that the scene draws."""
    names = {CUTOUTS[a.cutout].photo for a in scene.actors}
    names |= {layer.photo for layer in scene.background + scene.foreground if layer.photo not in (None, "room")}
    if scene.leaves:
        names.add("grass")
    return sorted(names)


def stamp(scene):
    """A SHA-256 over the scene's spec, this module's code and the photos it uses: equal stamps
    mean equal frames."""
    h = hashlib.sha256()
    h.update(json.dumps(asdict(scene), sort_keys=True).encode())
    with open(__file__, "rb") as f:
        h.update(f.read())
    for name in photos_used(scene):
        with open(_photo_path(name), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Pictures.

def _photo_path(name):
    return os.path.join(PHOTOS, name + ".npy")


def load_photo(name):
    """A photograph of PHOTOS as an H x W x 3 uint8 array."""
    path = _photo_path(name)
    if not os.path.exists(path):
        raise RuntimeError(f"photo {path} not found (scripts/setup.sh 56-scene-photos makes it)")
    return np.load(path)


def resize(img, width, height):
    """`img` (H x W x 3) scaled to width x height: halved by 2x2 averaging while at least twice
    too big, then bilinear."""
    f = img.astype(np.float32)
    while f.shape[0] >= 2 * height and f.shape[1] >= 2 * width:
        h2, w2 = f.shape[0] // 2, f.shape[1] // 2
        f = f[:2 * h2, :2 * w2].reshape(h2, 2, w2, 2, 3).mean(axis=(1, 3))

    def taps(n_out, n_in):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(pos).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), (pos - i0).astype(np.float32)

    y0, y1, wy = taps(height, f.shape[0])
    x0, x1, wx = taps(width, f.shape[1])
    rows = f[y0] * (1 - wy)[:, None, None] + f[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def room(width, height):
    """The camera stand-in's empty scene as RGB: a wall over a floor, gradients, skirting board,
    faint texture (the detector finds nothing in it)."""
    rng = np.random.default_rng(20261127)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    horizon = int(height * 0.68)
    img = np.empty((height, width, 3), np.float32)
    # Wall: warm light grey, darker towards the top and the right corner.
    wall = 200 - 45 * (1 - ys[:horizon] / 0.68) * 0.6 - 25 * xs
    img[:horizon] = np.stack([wall + 12, wall + 4, wall - 14], axis=-1)
    # Faint vertical wallpaper stripes.
    img[:horizon] += (6 * np.sin(xs * width / 11.0))[..., None][:, :, :1]
    # Floor: brown-grey, lighter towards the camera, with plank seams.
    fy = (ys[horizon:] - 0.68) / 0.32
    floor = 95 + 55 * fy + 10 * xs
    img[horizon:] = np.stack([floor + 18, floor + 6, floor - 10], axis=-1)
    seams = (np.arange(width)[None, :] % max(8, width // 9)) < max(1, width // 640)
    img[horizon:][np.broadcast_to(seams, (height - horizon, width))] -= 25
    # Skirting board.
    sk = max(2, height // 60)
    img[horizon - sk:horizon] = (235, 232, 225)
    img += rng.normal(0, 3.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _pixels(box, width, height):
    l, t, r, b = box
    return int(round(l * width)), int(round(t * height)), int(round(r * width)), int(round(b * height))


def paint(layer, width, height):
    """The layer's rectangle as an array (its own size) for a width x height frame."""
    x0, y0, x1, y1 = _pixels(layer.box, width, height)
    w, h = x1 - x0, y1 - y0
    if layer.color is not None:
        return np.broadcast_to(np.array(layer.color, np.uint8), (h, w, 3)).copy()
    if layer.photo == "room":
        return room(w, h)
    img = np.rot90(load_photo(layer.photo), layer.turn)
    if layer.mode == "tile":
        th = max(1, int(round(layer.tile * height)))
        tw = max(1, int(round(th * img.shape[1] / img.shape[0])))
        tile = resize(img, tw, th)
        tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
        tile = np.concatenate([tile, tile[::-1]], axis=0)
        out = np.tile(tile, (-(-h // (2 * th)), -(-w // (2 * tw)), 1))[:h, :w]
    else:  # fill: scale to cover, centre crop
        s = max(w / img.shape[1], h / img.shape[0])
        sw, sh = max(w, int(round(img.shape[1] * s))), max(h, int(round(img.shape[0] * s)))
        scaled = resize(img, sw, sh)
        ox, oy = (sw - w) // 2, (sh - h) // 2
        out = scaled[oy:oy + h, ox:ox + w]
    if layer.tint != (1.0, 1.0, 1.0):
        out = np.clip(out * np.array(layer.tint, np.float32), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def _patch_size(actor, width, height):
    """(rows, columns) of the actor's patch in a width x height frame."""
    c = CUTOUTS[actor.cutout]
    ph_img, pw_img = _cutout_shape(c)
    ph = max(2, int(round(actor.height * height)))
    pw = min(width, max(2, int(round(ph * pw_img / ph_img))))
    return ph, pw


_SHAPES = {}


def _cutout_shape(c):
    """(rows, columns) of the cutout's crop of its photo (cached: photos are read once)."""
    if c not in _SHAPES:
        h, w = load_photo(c.photo).shape[:2]
        l, t, r, b = c.crop
        _SHAPES[c] = (int(round(b * h)) - int(round(t * h)), int(round(r * w)) - int(round(l * w)))
    return _SHAPES[c]


def cutout_patch(actor, width, height):
    """The actor's crop of its photo, scaled for a width x height frame."""
    c = CUTOUTS[actor.cutout]
    img = load_photo(c.photo)
    h, w = img.shape[:2]
    l, t, r, b = c.crop
    crop = img[int(round(t * h)):int(round(b * h)), int(round(l * w)):int(round(r * w))]
    ph, pw = _patch_size(actor, width, height)
    return resize(crop, pw, ph)


def _foliage(leaves, rng, width, height, grass):
    """Precomputed foliage clusters: [(patch, mask, x, y, (amplitude, frequency, phase) x 2)]."""
    x0, y0, x1, y1 = _pixels(leaves.box, width, height)
    out = []
    for _ in range(leaves.clusters):
        cw = max(8, int((x1 - x0) * rng.uniform(0.35, 0.6)))
        ch = max(8, int((y1 - y0) * rng.uniform(0.35, 0.6)))
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        mask = np.zeros((ch, cw), bool)
        for _ in range(14):  # leaves: random ellipses
            cx, cy = rng.uniform(0.1, 0.9) * cw, rng.uniform(0.1, 0.9) * ch
            rx, ry = rng.uniform(0.08, 0.22) * cw, rng.uniform(0.06, 0.18) * ch
            mask |= ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        gy, gx = rng.integers(0, grass.shape[0] - ch), rng.integers(0, grass.shape[1] - cw)
        shade = rng.uniform(0.55, 1.0)
        patch = np.clip(grass[gy:gy + ch, gx:gx + cw] * (np.array((0.45, 0.8, 0.35)) * shade), 0, 255)
        x = int(rng.uniform(x0, max(x0 + 1, x1 - cw)))
        y = int(rng.uniform(y0, max(y0 + 1, y1 - ch)))
        amp = 0.012 * width
        sway = [(amp * rng.uniform(0.5, 1.0), rng.uniform(0.3, 1.2), rng.uniform(0, 2 * np.pi))
                for _ in range(2)]
        out.append((patch.astype(np.uint8), mask[..., None], x, y, sway))
    return out


class Renderer:
    """Frames of one scene at one size. Everything static (the background, the scaled actors,
    the foreground, the foliage, the night mapping, a bank of noise) is made once here; frame(t)
    only copies and pastes."""

    NOISE_FRAMES = 8

    def __init__(self, scene, width, height):
        self.scene, self.w, self.h = scene, width, height
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(scene.name.encode()).digest()[:8], "little"))
        self.lut = None
        if scene.night is not None:
            n = scene.night
            self.lut = np.round(n.lo + np.arange(256) * (n.hi - n.lo) / 255.0).astype(np.uint8)
        self.bg = np.empty((height, width, 3), np.uint8)
        for layer in scene.background:
            self._put(self.bg, layer)
        self.actors = [(a, self._night(cutout_patch(a, width, height))) for a in scene.actors]
        self.front = []
        for layer in scene.foreground:
            x0, y0, x1, y1 = _pixels(layer.box, width, height)
            self.front.append((x0, y0, self._night(paint(layer, width, height))))
        self.foliage = []
        if scene.leaves:
            grass = resize(load_photo("grass"), max(width, 64), max(width, 64))
            for leaves in scene.leaves:
                self.foliage += [(self._night(p), m, x, y, s) for p, m, x, y, s in
                                 _foliage(leaves, rng, width, height, grass)]
        self.noise = None
        if scene.night is not None and scene.night.noise > 0:
            # Offset by `bias` so that it adds as uint8 without wrapping: bias <= lo, hi + 2 bias < 256.
            self.bias = min(scene.night.lo, int(3 * scene.night.noise))
            z = rng.standard_normal((self.NOISE_FRAMES, height, width, 3), np.float32) * scene.night.noise
            self.noise = (np.clip(np.round(z), -self.bias, self.bias) + self.bias).astype(np.uint8)
        self.out = np.empty_like(self.bg)

    def _night(self, img):
        return img if self.lut is None else self.lut[img]

    def _put(self, frame, layer):
        x0, y0, x1, y1 = _pixels(layer.box, self.w, self.h)
        frame[y0:y1, x0:x1] = self._night(paint(layer, self.w, self.h))

    def gain(self, t):
        """The lighting's brightness gain at time t."""
        if not self.scene.lighting:
            return 1.0
        ks = self.scene.lighting
        return float(np.interp(t, [k[0] for k in ks], [k[1] for k in ks]))

    def visible(self, t):
        """Indices of the actors in the frame at time t."""
        return [i for i, (a, _) in enumerate(self.actors) if a.path[0][0] <= t < a.path[-1][0]]

    def frame(self, t):
        """The RGB frame (H x W x 3 uint8) at scene time t; the array is reused by the next call."""
        f = self.out
        np.copyto(f, self.bg)
        for i in self.visible(t):
            actor, patch = self.actors[i]
            x0, y0, x1, y1 = _actor_box(actor, t, self.w, self.h)
            f[y0:y1, x0:x1] = patch
        for x, y, img in self.front:
            f[y:y + img.shape[0], x:x + img.shape[1]] = img
        for patch, mask, x, y, sway in self.foliage:
            dx = sum(a * np.sin(2 * np.pi * fr * t + ph) for a, fr, ph in sway)
            dy = 0.3 * sum(a * np.cos(2 * np.pi * fr * t + ph) for a, fr, ph in sway)
            self._paste_masked(f, patch, mask, int(round(x + dx)), int(round(y + dy)))
        g = self.gain(t)
        if g != 1.0:
            lut = np.clip(np.round(np.arange(256) * g), 0, 255).astype(np.uint8)
            np.take(lut, f, out=f)
        if self.noise is not None:
            np.add(f, self.noise[int(t * 30) % self.NOISE_FRAMES], out=f)
            np.subtract(f, self.bias, out=f)
        return f

    def _paste_masked(self, f, patch, mask, x, y):
        ph, pw = patch.shape[:2]
        sx0, sy0 = max(0, -x), max(0, -y)
        sx1, sy1 = min(pw, self.w - x), min(ph, self.h - y)
        if sx0 < sx1 and sy0 < sy1:
            np.copyto(f[y + sy0:y + sy1, x + sx0:x + sx1], patch[sy0:sy1, sx0:sx1], where=mask[sy0:sy1, sx0:sx1])


# ---------------------------------------------------------------------------------------------
# Standalone use.

def write_png(path, rgb):
    """An RGB uint8 array as a PNG file (no dependency but zlib)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print the catalogue with ground truth as JSON")
    ap.add_argument("--png", nargs=3, metavar=("OUT", "NAME", "SECS"), help="write one frame as a PNG")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    a = ap.parse_args()
    if a.list:
        json.dump([describe(s) for s in SCENES.values()], sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif a.png:
        out, name, secs = a.png
        if name not in SCENES:
            ap.error(f"no scene {name}; scenes: {', '.join(SCENES)}")
        write_png(out, Renderer(SCENES[name], a.width, a.height).frame(float(secs)))
    else:
        ap.error("give --list or --png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
