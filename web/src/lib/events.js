// Events as the review list gives them, remembered by id for the event screen, and the
// reviewed mark.
import { get, put, enc } from './api.js';

const byId = new Map();

export function remember(events) {
  for (const e of events) byId.set(e.event_id, e);
}

/** Where an event's sealed thumbnail is, and its key in age.js's cache of decrypted images. */
export const thumbPath = (id) => `/api/v1/events/${enc(id)}/thumbnail`;
export const thumbKey = (id) => 't:' + id;

const queryKey = (q) => JSON.stringify(Object.entries(q || {}).filter(([, v]) => v !== undefined && v !== null && v !== ''));

// A review page asked for ahead (while the key is being made), taken by the first review()
// with the same query within FRESH ms.
const FRESH = 30_000;
let ahead = null; // {key, at, page: Promise, done: the page once it is here}

async function ask(query) {
  const r = await get('/api/v1/review', query);
  remember(r.events);
  return r;
}

/** Asks for a review page now, for the review() that will want it in a moment. */
export function prefetchReview(query) {
  const key = queryKey(query);
  if (!ahead || ahead.key !== key || Date.now() - ahead.at > FRESH) {
    const page = ask(query);
    const a = { key, at: Date.now(), page, done: null };
    page.then((r) => (a.done = r), () => {});
    ahead = a;
  }
  return ahead.page;
}

/** The page asked for ahead with this query when it is already here (taken), else null. */
export function reviewReady(query) {
  if (!ahead || !ahead.done || ahead.key !== queryKey(query) || Date.now() - ahead.at > FRESH) return null;
  const r = ahead.done;
  ahead = null;
  return r;
}

export async function review(query) {
  if (ahead && ahead.key === queryKey(query) && Date.now() - ahead.at <= FRESH) {
    const { page } = ahead;
    ahead = null;
    try {
      return await page;
    } catch {
      /* ask again */
    }
  }
  return ask(query);
}

/** One event: remembered, else asked for (GET /api/v1/events/{id} when the server has it, else the review pages). */
export async function eventById(id) {
  if (byId.has(id)) return byId.get(id);
  try {
    const e = await get(`/api/v1/events/${enc(id)}`);
    if (e && e.event_id) {
      remember([e]);
      return e;
    }
  } catch (err) {
    if (![404, 405].includes(err.status)) throw err;
  }
  let before;
  for (let page = 0; page < 10; page++) {
    const r = await review({ before, limit: 500 });
    if (byId.has(id)) return byId.get(id);
    if (!r.next_before) break;
    before = r.next_before;
  }
  const err = new Error('No such event.');
  err.status = 404;
  throw err;
}

export async function setReviewed(id, reviewed) {
  const r = await put(`/api/v1/events/${enc(id)}/reviewed`, { reviewed });
  const e = byId.get(id);
  if (e) e.reviewed_at_ms = r.reviewed_at_ms;
  return r;
}
