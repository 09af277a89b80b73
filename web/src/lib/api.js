// Same-origin requests to the vm's (or the edge's) /api/v1. The session cookie goes along by
// itself (credentials 'same-origin'); nothing secret is ever put in a request by this page.
// Errors are the API's JSON `{error, message}`, thrown as ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http_' + status;
  }
}

function url(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function errorOf(res) {
  let code = null, message = null;
  try {
    const j = await res.json();
    code = j.error;
    message = j.message;
  } catch {
    /* not JSON */
  }
  if (res.status === 429) {
    const after = res.headers.get('Retry-After');
    message = (message || 'too many attempts') + (after ? `: try again in ${after} s` : '');
  }
  return new ApiError(res.status, code, message || `${res.status} ${res.statusText}`);
}

/**
 * A request; resolves to the parsed JSON (or null for 204), or the Response itself with
 * `raw: true` (for sealed bodies, streamed).
 */
export async function api(path, { method = 'GET', body, query, signal, raw = false, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', signal, headers: { Accept: 'application/json', ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !path.startsWith('/api/v1/session') && typeof window !== 'undefined') {
      window.dispatchEvent(new CustomEvent('guardian:unauthorized'));
    }
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, query, opts) => api(path, { ...opts, query });
export const put = (path, body) => api(path, { method: 'PUT', body });
export const post = (path, body) => api(path, { method: 'POST', body });
export const del = (path) => api(path, { method: 'DELETE' });

export const enc = encodeURIComponent;
