// Points: a filtered, paged browser (scroll with next_page_offset, never the whole
// collection), one point's payload and vectors with payload editing and delete, and an
// upload of a JSON file of points.

import { call, enc } from "../api.js";
import { clear, confirmTyped, field, h, pre, section, table, toast } from "../dom.js";
import { checkFilter, parseJson } from "../filter.js";
import { count, preview } from "../format.js";
import { picker, title } from "./common.js";

const LIMITS = [10, 25, 50, 100];

export async function render(main, [name]) {
  const chosen = await picker("points", name);
  main.append(title("Points", chosen.element));
  if (!chosen.chosen) return;
  const base = `/collections/${enc(chosen.chosen)}`;
  const state = { offsets: [null], filter: null };
  const editor = h("textarea", { id: "filter-editor", rows: 4, spellcheck: false, placeholder: '{"must": [{"key": "city", "match": {"value": "Paris"}}]}' });
  const problem = h("p.error", { id: "filter-error", role: "alert" });
  const limit = h("select", { id: "page-size" }, LIMITS.map((n) => h("option", { text: n, selected: n === 25 })));
  const total = h("span.muted", { id: "point-count" });
  const page = h("div", { id: "point-page" });
  const details = h("div", { id: "point-detail" }, h("p.muted", { text: "Choose a point in the list." }));
  const apply = h("button", { type: "submit", text: "Apply filter" });
  const form = h("form", {}, field("Filter (JSON)", editor), problem, h("div.row", {}, field("Page size", limit), apply, total));
  editor.addEventListener("input", () => { problem.textContent = checkFilter(editor.value).message ?? ""; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const checked = checkFilter(editor.value);
    problem.textContent = checked.message ?? "";
    if (checked.message) return;
    state.filter = checked.filter;
    state.offsets = [null];
    load(true);
  });
  limit.addEventListener("change", () => { state.offsets = [null]; load(); });
  main.append(h("div.split", {}, section("Browse", form, page), section("Point", details)), uploadSection(base, () => load(true)));

  /** One scroll page; the (exact) count only when the filter changed, since it reads
   * every matching point. */
  async function load(recount = false) {
    const offset = state.offsets[state.offsets.length - 1];
    const body = { limit: Number(limit.value), offset, with_payload: true, with_vector: false };
    if (state.filter) body.filter = state.filter;
    const [scroll, counted] = await Promise.all([
      call("POST", `${base}/points/scroll`, body),
      recount ? call("POST", `${base}/points/count`, { filter: state.filter ?? undefined, exact: true }) : null,
    ]);
    if (counted) total.textContent = `${count(counted.count)} matching`;
    const rows = table([
      { label: "Id", value: (p) => String(p.id) },
      { label: "Payload", value: (p) => h("code", { text: preview(p.payload, 100) }) },
    ], scroll.points, { onRow: (p) => showPoint(base, p.id, details, () => load(true)), rowLabel: (p) => `Point ${p.id}` });
    const pager = h("div.row.pager", {},
      h("button", { type: "button", text: "Previous", disabled: state.offsets.length === 1, onclick: () => { state.offsets.pop(); load(); } }),
      h("span", { text: `Page ${state.offsets.length}` }),
      h("button", { type: "button", text: "Next", disabled: scroll.next_page_offset === null || scroll.next_page_offset === undefined,
        onclick: () => { state.offsets.push(scroll.next_page_offset); load(); } }));
    page.replaceChildren(rows, pager);
  }
  await load(true);
}

export async function showPoint(base, id, into, reload) {
  const point = await call("GET", `${base}/points/${enc(String(id))}`);
  const payload = h("textarea", { id: "payload-editor", rows: 8, spellcheck: false });
  payload.value = JSON.stringify(point.payload ?? {}, null, 2);
  const problem = h("p.error", { role: "alert" });
  const save = h("button", { type: "button", text: "Save payload", onclick: async () => {
    const parsed = parseJson(payload.value);
    if (parsed.error || typeof parsed.value !== "object" || Array.isArray(parsed.value) || parsed.value === null) {
      problem.textContent = parsed.error ? `Invalid JSON (line ${parsed.line}): ${parsed.error}` : "The payload must be a JSON object";
      return;
    }
    problem.textContent = "";
    await call("PUT", `${base}/points/payload?wait=true`, { payload: parsed.value, points: [point.id] });
    toast(`Saved the payload of ${point.id}`);
    reload?.();
  } });
  const remove = h("button.danger", { type: "button", text: "Delete point", onclick: async () => {
    if (!(await confirmTyped(`Delete point ${point.id}?`, String(point.id)))) return;
    await call("POST", `${base}/points/delete?wait=true`, { points: [point.id] });
    toast(`Deleted ${point.id}`);
    clear(into);
    reload?.();
  } });
  into.replaceChildren(h("h3", { text: `Point ${point.id}` }), field("Payload", payload), problem,
    h("div.row", {}, save, remove), h("h4", { text: "Vectors" }), pre(point.vector));
}

function uploadSection(base, reload) {
  const file = h("input", { id: "points-file", type: "file", accept: ".json,application/json" });
  const status = h("p.muted", { id: "upload-status", role: "status" });
  const button = h("button", { type: "submit", text: "Upload" });
  const form = h("form", { id: "upload-points" }, field("Points file", file,
    'A JSON array of {"id", "vector", "payload"} or {"points": [...]}; sent in batches of 500.'), button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) { status.textContent = "Choose a file first."; return; }
    const parsed = parseJson(await file.files[0].text());
    const points = Array.isArray(parsed.value) ? parsed.value : parsed.value?.points;
    if (parsed.error || !Array.isArray(points)) { status.textContent = parsed.error ?? "Expected an array of points"; return; }
    for (let i = 0; i < points.length; i += 500) {
      await call("PUT", `${base}/points?wait=true`, { points: points.slice(i, i + 500) });
      status.textContent = `Uploaded ${count(Math.min(points.length, i + 500))} of ${count(points.length)}`;
    }
    toast(`Uploaded ${count(points.length)} points`);
    reload();
  });
  return section("Upload points", form);
}
