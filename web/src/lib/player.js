// Plays a sealed clip: the age file is fetched, decrypted as it streams, and the fragmented
// MP4 fed to Media Source Extensions when the browser takes its codec; otherwise (or for a
// non-fragmented file) the whole decrypted file becomes a blob: URL. Either way the decrypted
// file is kept as a Blob for the Download button.
import { api } from './api.js';
import { decryptStream, objectUrl } from './age.js';
import { parseInit } from './mp4.js';

function concat(chunks, total) {
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const once = (target, name) => new Promise((resolve) => target.addEventListener(name, resolve, { once: true }));

/**
 * Starts playing `path` (a sealed clip) in `video`. Returns a promise of
 * {blob, mode: 'mse'|'blob'}; `onProgress({received, mode})` reports as it goes.
 */
export async function playSealedClip(video, path, { signal, onProgress = () => {}, onUrl = () => {} } = {}) {
  const url = (x) => {
    const u = objectUrl(x);
    onUrl(u);
    return u;
  };
  const res = await api(path, { raw: true, signal, headers: { Accept: 'application/octet-stream' } });
  const plain = await decryptStream(res.body);
  const reader = plain.getReader();
  signal?.addEventListener('abort', () => reader.cancel().catch(() => {}));
  const chunks = [];
  let received = 0;
  let info = null;
  let mse = null; // {ms, sb}
  let mode = 'blob';
  let mseFailed = false;

  async function append(buf) {
    if (!mse || mseFailed) return;
    try {
      if (mse.sb.updating) await once(mse.sb, 'updateend');
      mse.sb.appendBuffer(buf);
      await once(mse.sb, 'updateend');
    } catch (e) {
      mseFailed = true;
    }
  }

  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress({ received, mode });
    if (!info) {
      info = parseInit(concat(chunks, received));
      if (info && info.fragmented && typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported(info.mime)) {
        const ms = new MediaSource();
        video.src = url(ms);
        await once(ms, 'sourceopen');
        const sb = ms.addSourceBuffer(info.mime);
        mse = { ms, sb };
        mode = 'mse';
        await append(concat(chunks, received));
        video.play().catch(() => {});
      }
    } else if (mse) {
      await append(value);
    }
  }
  if (signal?.aborted) throw new DOMException('the clip was left', 'AbortError');
  const blob = new Blob(chunks, { type: 'video/mp4' });
  if (mse && !mseFailed) {
    if (mse.sb.updating) await once(mse.sb, 'updateend');
    try {
      mse.ms.endOfStream();
    } catch {
      /* already ended */
    }
  } else {
    mode = 'blob';
    video.src = url(blob);
    video.play().catch(() => {});
  }
  onProgress({ received, mode, done: true });
  return { blob, mode, codecs: info?.codecs || [] };
}
