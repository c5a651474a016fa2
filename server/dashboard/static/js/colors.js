// Colours for the map's dots (no DOM): the ten most frequent values of a categorical
// field each get a colour (the rest "other"); a numeric field runs along a gradient.

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
export const OTHER = "#c7c7c7";
export const MISSING = "#9aa4b2";

/** {colourOf(value), legend: [{label, colour}]} for the values a map shows. */
export function colourScale(values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (!present.length) return { colourOf: () => MISSING, legend: [] };
  if (present.every((v) => typeof v === "number")) return numericScale(present);
  return categoricalScale(present.map(String));
}

function numericScale(numbers) {
  let low = Infinity;
  let high = -Infinity;
  for (const n of numbers) { low = Math.min(low, n); high = Math.max(high, n); }
  const span = high - low || 1;
  const colourOf = (v) => (typeof v === "number" ? gradient((v - low) / span) : MISSING);
  return { colourOf, legend: [{ label: String(low), colour: gradient(0) }, { label: String(high), colour: gradient(1) }] };
}

function categoricalScale(labels) {
  const counts = new Map();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, PALETTE.length);
  const colours = new Map(top.map(([label], i) => [label, PALETTE[i]]));
  const colourOf = (v) => (v === null || v === undefined ? MISSING : colours.get(String(v)) ?? OTHER);
  const legend = top.map(([label, n]) => ({ label: `${label} (${n})`, colour: colours.get(label) }));
  if (counts.size > PALETTE.length) legend.push({ label: "other", colour: OTHER });
  return { colourOf, legend };
}

/** Blue (0) to orange (1). */
export function gradient(t) {
  const clamp = Math.min(1, Math.max(0, t));
  const from = [31, 119, 180];
  const to = [255, 127, 14];
  const mix = from.map((c, i) => Math.round(c + (to[i] - c) * clamp));
  return `#${mix.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}
