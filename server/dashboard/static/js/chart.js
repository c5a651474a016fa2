// Small SVG charts: scales are pure (unit-tested), drawing needs the DOM.

const SVG = "http://www.w3.org/2000/svg";

/** Linear map of [lo, hi] onto [a, b]; a flat domain maps to the middle. */
export function scale(lo, hi, a, b) {
  const span = hi - lo;
  return (v) => (span === 0 ? (a + b) / 2 : a + ((v - lo) / span) * (b - a));
}

/** Min and max over every value of every series, padded so a flat line sits inside. */
export function extent(values) {
  if (!values.length) return [0, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) { lo = Math.min(0, lo); hi = hi === 0 ? 1 : Math.max(0, hi); }
  return [lo, hi];
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

/** A line chart of named series [{name, colour, points: [[t, v]...]}] with a y label. */
export function lineChart(series, { width = 560, height = 180, unit = "", format = (v) => v.toFixed(2) } = {}) {
  const pad = { left: 56, right: 8, top: 10, bottom: 20 };
  const ts = series.flatMap((s) => s.points.map((p) => p[0]));
  const vs = series.flatMap((s) => s.points.map((p) => p[1]));
  const [t0, t1] = extent(ts);
  const [v0, v1] = extent(vs);
  const x = scale(t0, t1, pad.left, width - pad.right);
  const y = scale(v0, v1, height - pad.bottom, pad.top);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v0), y2: y(v0), class: "axis" }));
  for (const v of [v0, v1]) {
    const label = svg("text", { x: pad.left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" });
    label.textContent = `${format(v)}${unit}`;
    root.append(label);
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    root.append(svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2 }));
    for (const p of s.points) root.append(svg("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2, fill: s.colour }));
  }
  return root;
}

/** Horizontal bars of {label: value}. */
export function barChart(values, { width = 560, format = (v) => String(v) } = {}) {
  const entries = Object.entries(values).sort((a, b) => b[1] - a[1]);
  const row = 22;
  const height = Math.max(row, entries.length * row);
  const max = Math.max(1, ...entries.map((e) => e[1]));
  const bar = scale(0, max, 0, width - 220);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  entries.forEach(([label, value], i) => {
    const top = i * row;
    const name = svg("text", { x: 0, y: top + 15, class: "tick" });
    name.textContent = label;
    const amount = svg("text", { x: 150 + bar(value) + 6, y: top + 15, class: "tick" });
    amount.textContent = format(value);
    root.append(name, svg("rect", { x: 150, y: top + 4, width: Math.max(1, bar(value)), height: 14, class: "bar" }), amount);
  });
  return root;
}
