// Every data call goes through here: the key from session storage rides in the
// `api-key` header, and Qdrant's error envelope becomes an ApiError.

const KEY = "quiver.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { sessionStorage.setItem(KEY, value); },
  get connected() { return sessionStorage.getItem(KEY) !== null; },
  forget() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const out = { ...extra };
  if (session.key) out["api-key"] = session.key;
  return out;
}

/** A JSON call; returns the envelope's `result`. */
export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return result(await fetch(path, init));
}

/** A call with a raw body (NDJSON lines, multipart forms). */
export async function send(method, path, body, contentType) {
  const extra = contentType ? { "content-type": contentType } : {};
  return result(await fetch(path, { method, headers: headers(extra), body }));
}

/** A GET answered with something else than JSON (metrics text, snapshot files). */
export async function fetchRaw(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) await result(response);
  return response;
}

async function result(response) {
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: use the status text */ }
  if (!response.ok) {
    const message = data?.status?.error ?? (data?.detail ? JSON.stringify(data.detail) : response.statusText);
    throw new ApiError(response.status, message || `HTTP ${response.status}`);
  }
  return data?.result;
}

export const enc = encodeURIComponent;
