// The search console: a query by point id, a pasted vector, or text (server-side BM25,
// only where the collection has sparse vectors), with limit, filter, hnsw_ef, exact and
// quantization knobs; results with scores and payloads; the planner's explain per segment.

import { call, enc } from "../api.js";
import { field, h, pre, section, table } from "../dom.js";
import { explainRows, explainSummary } from "../explain.js";
import { checkFilter, parseJson } from "../filter.js";
import { count, pointId, preview, vectorList } from "../format.js";
import { picker, title } from "./common.js";

export async function render(main, [name]) {
  const chosen = await picker("search", name);
  main.append(title("Search", chosen.element));
  if (!chosen.chosen) return;
  const base = `/collections/${enc(chosen.chosen)}`;
  const info = await call("GET", base);
  const dense = vectorList(info.config.params.vectors);
  const sparse = Object.keys(info.config.params.sparse_vectors ?? {});
  const results = h("div", { id: "search-results" });
  const explain = h("div", { id: "explain-panel" });
  main.append(section("Query", queryForm(base, dense, sparse, results, explain)), section("Results", results), section("Explain", explain));
}

function queryForm(base, dense, sparse, results, explain) {
  const modes = [["id", "Point id"], ["vector", "Vector"], ...(sparse.length ? [["text", "Text (BM25)"]] : [])];
  const mode = h("select", { id: "query-mode" }, modes.map(([v, label]) => h("option", { value: v, text: label })));
  const query = h("textarea", { id: "query-input", rows: 2, spellcheck: false, placeholder: 'a point id, a JSON vector [0.1, 0.2, …] or a sparse one {"indices": [3, 9], "values": [0.5, 1]}' });
  const using = h("select", { id: "query-using" });
  const limit = h("input", { id: "query-limit", type: "number", min: 1, max: 1000, value: 10 });
  const filter = h("textarea", { id: "query-filter", rows: 3, spellcheck: false, placeholder: '{"must": [{"key": "tag", "match": {"value": "a"}}]}' });
  const ef = h("input", { id: "query-ef", type: "number", min: 1, placeholder: "default" });
  const exact = h("input", { id: "query-exact", type: "checkbox" });
  const ignore = h("input", { id: "query-q-ignore", type: "checkbox" });
  const rescore = h("input", { id: "query-q-rescore", type: "checkbox", checked: true });
  const oversampling = h("input", { id: "query-q-oversampling", type: "number", min: 1, step: "0.5", placeholder: "default" });
  const problem = h("p.error", { id: "query-error", role: "alert" });
  const fillUsing = () => {
    const names = mode.value === "text" ? sparse : [...dense.map((v) => v.name), ...sparse];
    using.replaceChildren(...names.map((n) => h("option", { value: n, text: n || "(default)" })));
  };
  mode.addEventListener("change", fillUsing);
  fillUsing();
  filter.addEventListener("input", () => { problem.textContent = checkFilter(filter.value).message ?? ""; });
  const form = h("form.grid", { id: "search-form" },
    field("Query by", mode), field("Vector name", using), field("Query", query), field("Limit", limit),
    field("Filter (JSON)", filter), field("hnsw_ef", ef), checkbox("Exact (no index)", exact),
    checkbox("Quantization: ignore", ignore), checkbox("Quantization: rescore", rescore), field("Oversampling", oversampling),
    problem, h("div.actions", {}, h("button", { type: "submit", text: "Search" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const built = buildQuery({ mode: mode.value, query: query.value, using: using.value, limit: limit.value, filter: filter.value,
      ef: ef.value, exact: exact.checked, ignore: ignore.checked, rescore: rescore.checked, oversampling: oversampling.value });
    problem.textContent = built.message ?? "";
    if (built.message) return;
    const started = performance.now();
    const answer = await call("POST", `${base}/points/query`, built.body);
    showResults(results, answer.points, performance.now() - started);
    showExplain(explain, answer.explain);
  });
  return form;
}

function checkbox(label, input) {
  return h("label.check", {}, input, ` ${label}`);
}

/** The query body from the form's values, or {message} saying what is wrong. */
export function buildQuery(v) {
  const checked = checkFilter(v.filter);
  if (checked.message) return { message: checked.message };
  let query;
  if (v.mode === "id") {
    if (!v.query.trim()) return { message: "Give a point id" };
    query = pointId(v.query);
  } else if (v.mode === "vector") {
    const parsed = parseJson(v.query);
    const sparse = parsed.value && Array.isArray(parsed.value.indices) && Array.isArray(parsed.value.values);
    if (parsed.error || !(Array.isArray(parsed.value) || sparse)) {
      return { message: `The vector must be a JSON array of numbers or {"indices": [...], "values": [...]}${parsed.error ? ": " + parsed.error : ""}` };
    }
    query = parsed.value;
  } else {
    query = { text: v.query, model: "qdrant/bm25" };
  }
  const body = { query, limit: Number(v.limit) || 10, with_payload: true, explain: true };
  if (v.using) body.using = v.using;
  if (checked.filter) body.filter = checked.filter;
  const params = {};
  if (v.ef) params.hnsw_ef = Number(v.ef);
  if (v.exact) params.exact = true;
  if (v.ignore || !v.rescore || v.oversampling) {
    params.quantization = { ignore: v.ignore, rescore: v.rescore };
    if (v.oversampling) params.quantization.oversampling = Number(v.oversampling);
  }
  if (Object.keys(params).length) body.params = params;
  return { body };
}

function showResults(into, points, ms) {
  into.replaceChildren(
    h("p.muted", { text: `${count(points.length)} results in ${ms.toFixed(1)} ms (round trip)` }),
    table([
      { label: "Id", value: (p) => String(p.id) },
      { label: "Score", value: (p) => p.score.toFixed(4), className: "num" },
      { label: "Payload", value: (p) => h("code", { text: preview(p.payload, 120) }) },
    ], points));
}

function showExplain(into, explain) {
  if (!explain) { into.replaceChildren(h("p.muted", { text: "No explain in the answer." })); return; }
  const summary = explainSummary(explain);
  const strategies = Object.entries(summary.strategies).map(([s, n]) => `${s} × ${n}`).join(", ");
  const rows = explainRows(explain);
  into.replaceChildren(
    h("p", { id: "explain-summary", text: `${summary.segments} segments, ${summary.totalMs.toFixed(2)} ms in segments: ${strategies}` }),
    table([
      { label: "Segment", value: (r) => r.segment },
      { label: "Strategy", value: (r) => h(`span.strategy.strategy-${r.strategy}`, { text: r.strategy }) },
      { label: "Rows", value: (r) => count(r.size), className: "num" },
      { label: "Candidates", value: (r) => count(r.candidates), className: "num" },
      { label: "Estimated", value: (r) => h(r.estimateOff ? "span.warn" : "span", { text: r.estimated === null ? "–" : count(r.estimated), title: r.estimateOff ? "estimate off by 2× or more" : "" }), className: "num" },
      { label: "k / ef", value: (r) => `${r.k} / ${r.ef ?? "–"}` },
      { label: "Time", value: (r) => timeBar(r), className: "num" },
      { label: "Why", value: (r) => r.reason },
    ], rows, { caption: "Per segment: the planner's choice, its estimate against the actual candidates, and the time spent" }),
    h("details", {}, h("summary", { text: "Raw explain" }), pre(explain)));
}

function timeBar(row) {
  const bar = h(`span.timebar${row.slowest ? ".slowest" : ""}`);
  bar.style.width = `${Math.round(row.share * 60)}px`;
  return h("span.time", {}, bar, ` ${row.timeMs.toFixed(2)} ms`);
}
