// node --test: the search console's form -> query body.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildQuery } from "../../../server/dashboard/static/js/pages/search.js";

const FORM = { mode: "id", query: "7", using: "", limit: "5", filter: "", ef: "", exact: false, ignore: false, rescore: true, oversampling: "" };

test("a query by id asks for payloads and the explain, with no params by default", () => {
  assert.deepEqual(buildQuery(FORM).body, { query: 7, limit: 5, with_payload: true, explain: true });
  assert.equal(buildQuery({ ...FORM, query: "5c56c793-69f3-4fbf-87e6-c4bf54c28c26" }).body.query, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  assert.match(buildQuery({ ...FORM, query: " " }).message, /point id/);
});

test("a pasted vector must be a JSON array", () => {
  assert.deepEqual(buildQuery({ ...FORM, mode: "vector", query: "[0.5, 1]", using: "img" }).body.query, [0.5, 1]);
  assert.equal(buildQuery({ ...FORM, mode: "vector", query: "[0.5, 1]", using: "img" }).body.using, "img");
  assert.match(buildQuery({ ...FORM, mode: "vector", query: '{"a": 1}' }).message, /JSON array/);
  assert.deepEqual(buildQuery({ ...FORM, mode: "vector", query: '{"indices": [3], "values": [0.5]}' }).body.query, { indices: [3], values: [0.5] });
  assert.match(buildQuery({ ...FORM, mode: "vector", query: "[0.5," }).message, /JSON array of numbers or .*: Unexpected end/);
});

test("text is sent as a BM25 document for the server to tokenize", () => {
  const body = buildQuery({ ...FORM, mode: "text", query: "fast vector search", using: "bm25" }).body;
  assert.deepEqual(body.query, { text: "fast vector search", model: "qdrant/bm25" });
  assert.equal(body.using, "bm25");
});

test("knobs become Qdrant's params, and a bad filter stops the query", () => {
  const body = buildQuery({ ...FORM, ef: "128", exact: true, rescore: false, oversampling: "3", filter: '{"must": [{"key": "a", "match": {"value": 1}}]}' }).body;
  assert.deepEqual(body.params, { hnsw_ef: 128, exact: true, quantization: { ignore: false, rescore: false, oversampling: 3 } });
  assert.deepEqual(body.filter, { must: [{ key: "a", match: { value: 1 } }] });
  assert.match(buildQuery({ ...FORM, filter: '{"mist": []}' }).message, /unknown clause "mist"/);
});
