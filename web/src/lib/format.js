// Times, sizes and days in the tenant's time zone.
import { store } from './store.js';

export const tz = () => store.tenant?.time_zone || undefined;

const fmts = new Map();
function fmt(key, opts) {
  const k = key + '|' + (tz() || '');
  if (!fmts.has(k)) {
    try {
      fmts.set(k, new Intl.DateTimeFormat(undefined, { ...opts, timeZone: tz() }));
    } catch {
      fmts.set(k, new Intl.DateTimeFormat(undefined, opts));
    }
  }
  return fmts.get(k);
}

export const time = (ms) => (ms ? fmt('t', { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(ms) : '—');
export const dateTime = (ms) => (ms ? fmt('dt', { dateStyle: 'medium', timeStyle: 'medium' }).format(ms) : '—');
export const dayTitle = (ms) => fmt('d', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(ms);
export const hourOnly = (ms) => fmt('ho', { hour: 'numeric' }).format(ms);
export const hourTitle = (ms) => fmt('h', { hour: '2-digit', minute: '2-digit' }).format(ms);

/** YYYY-MM-DD of a time in the tenant's zone. */
export function dayKey(ms) {
  const p = Object.fromEntries(fmt('key', { year: 'numeric', month: '2-digit', day: '2-digit', hourCycle: 'h23' })
    .formatToParts(ms).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}
export function hourKey(ms) {
  const p = Object.fromEntries(fmt('hk', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' })
    .formatToParts(ms).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}`;
}

// The zone's offset (ms) at a time.
function offsetAt(ms) {
  const p = Object.fromEntries(fmt('off', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
    .formatToParts(ms).map((x) => [x.type, x.value]));
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The Unix ms of midnight starting day `YYYY-MM-DD` in the tenant's zone. */
export function dayStart(day) {
  const [y, m, d] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let t = guess - offsetAt(guess);
  t = guess - offsetAt(t);
  return t;
}
export function nextDay(day) {
  const [y, m, d] = day.split('-').map(Number);
  const n = new Date(Date.UTC(y, m - 1, d + 1));
  return n.toISOString().slice(0, 10);
}

export function ago(ms, now = Date.now()) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function duration(ms) {
  if (ms == null || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function bytes(n) {
  if (n == null) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
}

export const score = (milli) => (milli == null ? '' : `${Math.round(milli / 10)}%`);
export const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/** `1 event`, `2 events`. */
export const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/**
 * A 0-1 score as the API gives it (often a 32-bit float, 0.30000001192092896) rounded to 2
 * decimals for showing and editing: 0.3. Empty stays empty.
 */
export const score2 = (x) => (x === '' || x == null || !Number.isFinite(Number(x)) ? x : Math.round(Number(x) * 100) / 100);
