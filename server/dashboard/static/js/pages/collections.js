// Collections: a paged list with status colours, create, and one collection's detail
// (vectors, memory per part, payload schema and indexes, segments, PATCH, delete).

import { call, enc } from "../api.js";
import { confirmTyped, field, h, pre, section, table, toast } from "../dom.js";
import { bytes, count, statusClass, vectorList } from "../format.js";
import { collectionNames, title } from "./common.js";

const PAGE = 20;
const DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"];
const INDEX_TYPES = ["hnsw", "flat", "leanvec", "muvera"];
const QUANTIZATION = {
  "": null,
  Disabled: "Disabled",
  "scalar int8": { scalar: { type: "int8", quantile: 0.99 } },
  binary: { binary: {} },
  "product x8": { product: { compression: "x8" } },
  "rabitq 4 bits": { rabitq: { bits: 4 } },
};
const PAYLOAD_TYPES = ["keyword", "integer", "float", "bool", "text", "geo", "datetime", "uuid"];

export async function render(main, [name]) {
  if (name) return detail(main, name);
  const names = await collectionNames();
  const state = { filter: "", page: 0 };
  const listing = h("div", { id: "collection-list" });
  const search = h("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter collections by name" });
  search.addEventListener("input", () => { state.filter = search.value; state.page = 0; draw(); });
  main.append(title("Collections", h("span.muted", { text: `${count(names.length)} in all` })),
    section("All collections", search, listing), createForm());

  async function draw() {
    const matching = names.filter((n) => n.includes(state.filter));
    const shown = matching.slice(state.page * PAGE, (state.page + 1) * PAGE);
    const infos = await Promise.all(shown.map((n) => call("GET", `/collections/${enc(n)}`).then((i) => ({ name: n, ...i }), () => ({ name: n, status: "gone" }))));
    const pages = Math.max(1, Math.ceil(matching.length / PAGE));
    const move = (delta) => { state.page += delta; draw(); };
    listing.replaceChildren(
      table(COLUMNS, infos, { caption: `${count(matching.length)} collections` }),
      h("div.row.pager", {},
        h("button", { type: "button", text: "Previous", disabled: state.page === 0, onclick: () => move(-1) }),
        h("span", { text: `Page ${state.page + 1} of ${pages}` }),
        h("button", { type: "button", text: "Next", disabled: state.page + 1 >= pages, onclick: () => move(1) })));
  }
  await draw();
}

const COLUMNS = [
  { label: "Name", value: (c) => h("a", { href: `#/collections/${enc(c.name)}`, text: c.name }) },
  { label: "Status", value: (c) => statusBadge(c.status) },
  { label: "Points", value: (c) => count(c.points_count), className: "num" },
  { label: "Segments", value: (c) => count(c.segments_count), className: "num" },
  { label: "Vectors", value: (c) => vectorSummary(c.config) },
  { label: "Index", value: (c) => c.config?.index?.type ?? "–" },
  { label: "Memory", value: (c) => bytes(totalMemory(c.vectors_memory)), className: "num" },
];

export function statusBadge(status) {
  return h(`span.badge.${statusClass(status)}`, { text: status ?? "unknown" });
}

function vectorSummary(config) {
  if (!config) return "–";
  const dense = vectorList(config.params.vectors)
    .map((v) => `${v.name ? v.name + ": " : ""}${v.size}d ${v.distance}${v.multi ? " multi" : ""}`);
  const sparse = Object.keys(config.params.sparse_vectors ?? {}).map((name) => `${name}: sparse`);
  return [...dense, ...sparse].join(", ") || "–";
}

function totalMemory(memory) {
  if (!memory) return null;
  let total = 0;
  for (const part of Object.values(memory)) for (const b of Object.values(part.bytes ?? {})) total += b;
  return total;
}

function createForm() {
  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9_.\\-]+", autocomplete: "off" });
  const size = h("input", { name: "size", type: "number", min: 1, value: 8, required: true });
  const distance = h("select", { name: "distance" }, DISTANCES.map((d) => h("option", { text: d })));
  const index = h("select", { name: "index" }, INDEX_TYPES.slice(0, 2).map((t) => h("option", { text: t })));
  const threshold = h("input", { name: "threshold", type: "number", min: 0, placeholder: "20000" });
  const form = h("form.grid", { id: "create-collection" },
    field("Name", name), field("Vector size", size), field("Distance", distance), field("Index type", index),
    field("Indexing threshold", threshold, "points before a segment is sealed and indexed"),
    h("div.actions", {}, h("button", { type: "submit", text: "Create collection" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { vectors: { size: Number(size.value), distance: distance.value }, index: { type: index.value } };
    if (threshold.value !== "") body.optimizers_config = { indexing_threshold: Number(threshold.value) };
    await call("PUT", `/collections/${enc(name.value)}`, body);
    toast(`Created ${name.value}`);
    location.hash = `#/collections/${enc(name.value)}`;
  });
  return section("New collection", form);
}

async function detail(main, name) {
  const info = await call("GET", `/collections/${enc(name)}`);
  const segments = await call("GET", `/collections/${enc(name)}/segments`);
  const base = `/collections/${enc(name)}`;
  const links = ["points", "search", "explore", "snapshots"].map((p) => h("a.button", { href: `#/${p}/${enc(name)}`, text: p[0].toUpperCase() + p.slice(1) }));
  main.append(
    title(name, statusBadge(info.status), h("nav.row", { "aria-label": "This collection" }, links)),
    section("Overview", h("dl.facts", {},
      fact("Points", count(info.points_count)), fact("Indexed vectors", count(info.indexed_vectors_count)),
      fact("Segments", count(info.segments_count)), fact("Optimizer", typeof info.optimizer_status === "string" ? info.optimizer_status : JSON.stringify(info.optimizer_status)),
      fact("Index type", info.config.index?.type), fact("Vectors", vectorSummary(info.config)))),
    section("Memory per part", memoryTable(info.vectors_memory)),
    section("Payload schema and indexes", schemaTable(base, info.payload_schema), indexForm(base)),
    section("Segments", table(SEGMENT_COLUMNS, segments)),
    section("Change the index", patchForm(base, info)),
    section("Configuration", pre(info.config)),
    section("Delete", h("button.danger", { type: "button", id: "delete-collection", text: `Delete ${name}`, onclick: () => remove(name) })));
}

function fact(label, value) {
  return [h("dt", { text: label }), h("dd", { text: value ?? "–" })];
}

function memoryTable(memory) {
  const rows = [];
  for (const [vector, part] of Object.entries(memory ?? {})) {
    for (const [kind, b] of Object.entries(part.bytes ?? {})) {
      rows.push({ vector: vector || "(default)", kind, bytes: b, per: part.bytes_per_vector?.[kind], points: part.points });
    }
  }
  if (!rows.length) return h("p.muted", { text: "Nothing indexed yet." });
  return table([
    { label: "Vector", value: (r) => r.vector }, { label: "Part", value: (r) => r.kind },
    { label: "Bytes", value: (r) => bytes(r.bytes), className: "num" },
    { label: "Per vector", value: (r) => (r.per === undefined ? "–" : `${r.per.toFixed(1)} B`), className: "num" },
    { label: "Vectors", value: (r) => count(r.points), className: "num" },
  ], rows);
}

function schemaTable(base, schema) {
  const rows = Object.entries(schema ?? {}).map(([key, f]) => ({ key, ...f }));
  if (!rows.length) return h("p.muted", { text: "No payload indexes." });
  return table([
    { label: "Field", value: (r) => r.key }, { label: "Type", value: (r) => r.data_type },
    { label: "Points", value: (r) => count(r.points), className: "num" },
    { label: "", value: (r) => h("button.quiet", { type: "button", text: "Drop index", onclick: async () => {
      await call("DELETE", `${base}/index/${enc(r.key)}?wait=true`);
      toast(`Dropped the index on ${r.key}`);
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } }) },
  ], rows);
}

function indexForm(base) {
  const key = h("input", { name: "field", required: true, autocomplete: "off" });
  const type = h("select", { name: "type" }, PAYLOAD_TYPES.map((t) => h("option", { text: t })));
  const form = h("form.grid", {}, field("Field", key), field("Type", type), h("div.actions", {}, h("button", { type: "submit", text: "Create index" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await call("PUT", `${base}/index?wait=true`, { field_name: key.value, field_schema: type.value });
    toast(`Indexed ${key.value}`);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  });
  return form;
}

const SEGMENT_COLUMNS = [
  { label: "Segment", value: (s) => (s.segment_id === null ? "–" : String(s.segment_id)) }, { label: "Kind", value: (s) => s.kind },
  { label: "Points", value: (s) => count(s.points), className: "num" },
  { label: "Index", value: (s) => (typeof s.index === "object" ? JSON.stringify(s.index) : s.index ?? "exact") },
  { label: "Memory", value: (s) => bytes(s.memory_bytes), className: "num" },
];

function patchForm(base, info) {
  const type = h("select", { name: "index" }, INDEX_TYPES.map((t) => h("option", { text: t, selected: t === info.config.index?.type })));
  const m = h("input", { name: "m", type: "number", min: 0, max: 128, value: info.config.hnsw_config?.m ?? "" });
  const ef = h("input", { name: "ef_construct", type: "number", min: 4, max: 4096, value: info.config.hnsw_config?.ef_construct ?? "" });
  const quantization = h("select", { name: "quantization" }, Object.keys(QUANTIZATION).map((k) => h("option", { value: k, text: k || "(unchanged)" })));
  const form = h("form.grid", { id: "patch-collection" }, field("Index type", type), field("HNSW m", m), field("HNSW ef_construct", ef),
    field("Quantization", quantization), h("div.actions", {}, h("button", { type: "submit", text: "Apply (rebuilds in the background)" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { index: { type: type.value }, hnsw_config: { m: Number(m.value), ef_construct: Number(ef.value) } };
    if (QUANTIZATION[quantization.value]) body.quantization_config = QUANTIZATION[quantization.value];
    await call("PATCH", base, body);
    toast("Config changed; see Jobs for the rebuild");
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  });
  return form;
}

async function remove(name) {
  if (!(await confirmTyped(`Delete collection ${name} and all its points?`, name))) return;
  await call("DELETE", `/collections/${enc(name)}`);
  toast(`Deleted ${name}`);
  location.hash = "#/collections";
}
