// Just enough ISO BMFF to feed Media Source Extensions: where the init segment (ftyp + moov)
// ends, whether the file is fragmented (moov/mvex), and the codec string of each track from
// its sample entry (avcC for H.264: "avc1.PPCCLL").

function u32(b, o) {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
function fourcc(b, o) {
  return String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);
}

/** The boxes in b[start, end): [{type, start, end, body}], stopping at an incomplete one. */
export function boxes(b, start = 0, end = b.length) {
  const out = [];
  let o = start;
  while (o + 8 <= end) {
    let size = u32(b, o);
    const type = fourcc(b, o + 4);
    let header = 8;
    if (size === 1) {
      if (o + 16 > end) break;
      size = u32(b, o + 8) * 2 ** 32 + u32(b, o + 12);
      header = 16;
    } else if (size === 0) {
      size = end - o;
    }
    if (size < header) break;
    out.push({ type, start: o, end: o + size, body: o + header, complete: o + size <= end });
    if (o + size > end) break;
    o += size;
  }
  return out;
}

function child(b, box, type, skip = 0) {
  return boxes(b, box.body + skip, box.end).find((x) => x.type === type && x.complete);
}

const hex2 = (n) => n.toString(16).padStart(2, '0');

function sampleEntryCodec(b, entry) {
  const t = entry.type;
  if (t === 'avc1' || t === 'avc3') {
    const avcC = child(b, entry, 'avcC', 78);
    if (!avcC) return t;
    const p = avcC.body;
    return `${t}.${hex2(b[p + 1])}${hex2(b[p + 2])}${hex2(b[p + 3])}`;
  }
  if (t === 'mp4a') return 'mp4a.40.2';
  return t;
}

/**
 * Looks at the start of a (possibly partial) MP4: once ftyp and moov are complete, returns
 * `{initEnd, codecs: [..], fragmented, mime}`; `null` while more bytes are needed. Throws on
 * something that is not an MP4.
 */
export function parseInit(b) {
  const top = boxes(b);
  if (top.length && !['ftyp', 'styp', 'moov', 'free', 'skip'].includes(top[0].type)) {
    throw new Error('not an MP4 file');
  }
  const moov = top.find((x) => x.type === 'moov');
  if (!moov || !moov.complete) return null;
  const codecs = [];
  for (const trak of boxes(b, moov.body, moov.end).filter((x) => x.type === 'trak')) {
    const mdia = child(b, trak, 'mdia');
    const minf = mdia && child(b, mdia, 'minf');
    const stbl = minf && child(b, minf, 'stbl');
    const stsd = stbl && child(b, stbl, 'stsd');
    if (!stsd) continue;
    const entry = boxes(b, stsd.body + 8, stsd.end)[0];
    if (entry) codecs.push(sampleEntryCodec(b, entry));
  }
  const fragmented = !!child(b, moov, 'mvex');
  return {
    initEnd: moov.end,
    codecs,
    fragmented,
    mime: `video/mp4; codecs="${codecs.join(', ')}"`,
  };
}
