// Pure formatting helpers (no DOM): unit-tested with `node --test`.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function count(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US");
}

/** Seconds as "42 s", "3 min 5 s", "2 h 10 min"; null as "–". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined) return "–";
  return `${(100 * fraction).toFixed(fraction >= 0.9995 || fraction === 0 ? 0 : 1)}%`;
}

export function time(epochSeconds) {
  if (!epochSeconds) return "–";
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

/** Qdrant's status colours, and Quiver's grey (work held back after a cancel). */
export function statusClass(status) {
  return ["green", "yellow", "grey", "red"].includes(status) ? `status-${status}` : "status-unknown";
}

/** A one-line preview of a JSON value, cut at `max` characters. */
export function preview(value, max = 80) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Vector params of a collection config, named or not, as [{name, size, distance, multi}]. */
export function vectorList(vectors) {
  if (!vectors) return [];
  if (typeof vectors.size === "number") return [{ name: "", ...describe(vectors) }];
  return Object.entries(vectors).map(([name, params]) => ({ name, ...describe(params) }));
}

function describe(params) {
  return { size: params.size, distance: params.distance, multi: Boolean(params.multivector_config) };
}

/** A point id typed by a user: digits are an integer id, anything else a UUID string. */
export function pointId(text) {
  const trimmed = String(text).trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}
