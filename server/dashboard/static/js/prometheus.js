// Prometheus text exposition -> samples, and rates between two scrapes (no DOM).

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** [{name, labels, value}] of every sample line; comments and junk are skipped. */
export function parse(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const found = LINE.exec(line);
    if (!found) continue;
    const labels = {};
    for (const [, key, value] of (found[3] ?? "").matchAll(LABEL)) {
      labels[key] = value.replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    }
    samples.push({ name: found[1], labels, value: Number(found[4]) });
  }
  return samples;
}

/** Sum of `name`'s samples grouped by the value of label `by`. */
export function sumBy(samples, name, by) {
  const out = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = by ? (s.labels[by] ?? "") : "";
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** Per-second increase of each group between two scrapes `seconds` apart (a counter
 * reset, e.g. a restart, counts from zero). */
export function rates(before, after, seconds) {
  const out = {};
  if (!(seconds > 0)) return out;
  for (const [key, value] of Object.entries(after)) {
    const previous = before[key] ?? 0;
    out[key] = (value >= previous ? value - previous : value) / seconds;
  }
  return out;
}

/** Mean latency (seconds) per group between two scrapes, from a histogram's _sum and _count. */
export function meanLatency(before, after, name, by) {
  const sums = [sumBy(before, `${name}_sum`, by), sumBy(after, `${name}_sum`, by)];
  const counts = [sumBy(before, `${name}_count`, by), sumBy(after, `${name}_count`, by)];
  const out = {};
  for (const [key, count] of Object.entries(counts[1])) {
    const calls = count - (counts[0][key] ?? 0);
    if (calls > 0) out[key] = (sums[1][key] - (sums[0][key] ?? 0)) / calls;
  }
  return out;
}
