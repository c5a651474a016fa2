// Explore: a 2-D PCA map of a sample of up to 5,000 vectors (computed by the server,
// GET /collections/{name}/quiver/map), coloured by a payload field; a click on a dot (or
// its id typed in) shows the point and rings its nearest neighbours.

import { call, enc } from "../api.js";
import { svg, scale, extent } from "../chart.js";
import { colourScale } from "../colors.js";
import { field, h, pre, section, table } from "../dom.js";
import { count, pointId, preview, vectorList } from "../format.js";
import { picker, title } from "./common.js";

const WIDTH = 800;
const HEIGHT = 520;
const PAD = 12;

export async function render(main, [name]) {
  const chosen = await picker("explore", name);
  main.append(title("Explore", chosen.element));
  if (!chosen.chosen) return;
  const base = `/collections/${enc(chosen.chosen)}`;
  const info = await call("GET", base);
  const vectors = vectorList(info.config.params.vectors).filter((v) => !v.multi);
  const using = h("select", { id: "map-using" }, vectors.map((v) => h("option", { value: v.name, text: v.name || "(default)" })));
  const sample = h("input", { id: "map-sample", type: "number", min: 2, max: 5000, value: 1000 });
  const colour = h("input", { id: "map-colour", list: "map-fields", placeholder: "payload field", autocomplete: "off" });
  const fields = h("datalist", { id: "map-fields" }, Object.keys(info.payload_schema ?? {}).map((f) => h("option", { value: f })));
  const goto = h("input", { id: "map-goto", placeholder: "point id", autocomplete: "off" });
  const map = h("div.map", { id: "map" });
  const legend = h("ul.legend", { id: "map-legend" });
  const caption = h("p.muted", { id: "map-caption" });
  const detail = h("div", { id: "map-point" });
  const form = h("form.grid", { id: "map-form" }, field("Vector", using), field("Sample size", sample, "the first N points in id order, at most 5,000"),
    field("Colour by", colour), fields, h("div.actions", {}, h("button", { type: "submit", text: "Draw map" })));
  const view = { base, dots: new Map(), detail, using };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ using: using.value, limit: sample.value });
    if (colour.value) query.set("color_by", colour.value);
    const drawn = await call("GET", `${base}/quiver/map?${query}`);
    draw(view, drawn, map, legend);
    caption.textContent = `${count(drawn.sampled)} points${drawn.complete ? " (the whole collection)" : " (a sample)"}; the axes explain ` +
      `${(100 * drawn.explained[0]).toFixed(1)}% and ${(100 * drawn.explained[1]).toFixed(1)}% of the variance`;
  });
  const gotoForm = h("form.row", {}, field("Show point", goto), h("button", { type: "submit", text: "Show" }));
  gotoForm.addEventListener("submit", (event) => { event.preventDefault(); select(view, pointId(goto.value)); });
  main.append(section("Map", form, caption, h("div.map-wrap", {}, map, legend), gotoForm), section("Point and neighbours", detail));
}

function draw(view, drawn, into, legend) {
  const xs = drawn.points.map((p) => p.x);
  const ys = drawn.points.map((p) => p.y);
  const [x0, x1] = extent(xs);
  const [y0, y1] = extent(ys);
  const x = scale(x0, x1, PAD, WIDTH - PAD);
  const y = scale(y0, y1, HEIGHT - PAD, PAD);
  const colours = colourScale(drawn.points.map((p) => p.color));
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "scatter", role: "img", "aria-label": `Map of ${drawn.sampled} points` });
  view.dots = new Map();
  for (const p of drawn.points) {
    const dot = svg("circle", { cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: 3.5, fill: colours.colourOf(p.color), "data-id": String(p.id) });
    const tip = svg("title");
    tip.textContent = `${p.id}${p.color === null || p.color === undefined ? "" : ": " + p.color}`;
    dot.append(tip);
    view.dots.set(String(p.id), dot);
    root.append(dot);
  }
  root.addEventListener("click", (event) => {
    const id = event.target.getAttribute?.("data-id");
    if (id !== null && id !== undefined) select(view, pointId(id));
  });
  into.replaceChildren(root);
  legend.replaceChildren(...colours.legend.map((item) => {
    const swatch = h("span.swatch");
    swatch.style.background = item.colour;
    return h("li", {}, swatch, item.label);
  }));
}

async function select(view, id) {
  for (const dot of view.dots.values()) dot.classList.remove("selected", "neighbour");
  const [point, near] = await Promise.all([
    call("GET", `${view.base}/points/${enc(String(id))}`),
    call("POST", `${view.base}/points/query`, { query: id, using: view.using.value || undefined, limit: 10, with_payload: true }),
  ]);
  view.dots.get(String(id))?.classList.add("selected");
  for (const hit of near.points) view.dots.get(String(hit.id))?.classList.add("neighbour");
  view.detail.replaceChildren(
    h("h3", { id: "map-point-title", text: `Point ${point.id}` }), pre(point.payload ?? {}),
    h("h4", { text: "Nearest neighbours" }),
    table([
      { label: "Id", value: (p) => String(p.id) },
      { label: "Score", value: (p) => p.score.toFixed(4), className: "num" },
      { label: "Payload", value: (p) => h("code", { text: preview(p.payload, 80) }) },
      { label: "On the map", value: (p) => (view.dots.has(String(p.id)) ? "yes" : "not in the sample") },
    ], near.points, { onRow: (p) => select(view, p.id), rowLabel: (p) => `Show point ${p.id}` }));
}
