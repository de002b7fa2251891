// The HTTP API from the browser: the session cookie goes by itself
// (HttpOnly, SameSite=Strict); the CSRF token from /api/me or /api/login
// is kept in memory only (never in localStorage) and sent with every
// POST and DELETE as X-CSRF-Token.

let csrf = null;
const listeners = new Set();

export function setCsrf(token) {
  csrf = token || null;
}

/** Called with no argument when the API answers 401 (session ended). */
export function onUnauthenticated(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(typeof detail === 'string' ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

function detailOf(body) {
  if (!body || body.detail === undefined) return null;
  if (typeof body.detail === 'string') return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ');
  return null;
}

export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, null);
  }
  let data = null;
  if (response.status !== 204) {
    const type = response.headers.get('content-type') || '';
    data = type.includes('json') ? await response.json().catch(() => null) : await response.text().catch(() => null);
  }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) listeners.forEach((fn) => fn());
    const retry = Number(response.headers.get('retry-after')) || null;
    throw new ApiError(response.status, detailOf(data), retry);
  }
  return data;
}

export const get = (path, options) => request('GET', path, undefined, options);
export const post = (path, body = {}) => request('POST', path, body);
export const del = (path) => request('DELETE', path);

/** A query string of the given non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') q.set(key, value);
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}
