// Events as the review list gives them, remembered by id for the event screen, and the
// reviewed mark.
import { get, put, enc } from './api.js';

const byId = new Map();

export function remember(events) {
  for (const e of events) byId.set(e.event_id, e);
}

export async function review(query) {
  const r = await get('/api/v1/review', query);
  remember(r.events);
  return r;
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
