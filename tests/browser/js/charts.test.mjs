// node --test: the map's colours, chart scales and the explain panel's rows.
import assert from "node:assert/strict";
import { test } from "node:test";
import { extent, scale } from "../../../server/dashboard/static/js/chart.js";
import { colourScale, gradient, MISSING, OTHER, PALETTE } from "../../../server/dashboard/static/js/colors.js";
import { explainRows, explainSummary } from "../../../server/dashboard/static/js/explain.js";

test("categories get palette colours by frequency, the rest 'other'", () => {
  const values = [...Array(12).keys()].flatMap((i) => Array(12 - i).fill(`v${i}`));
  const scale = colourScale([...values, null]);
  assert.equal(scale.colourOf("v0"), PALETTE[0]);
  assert.equal(scale.colourOf("v9"), PALETTE[9]);
  assert.equal(scale.colourOf("v11"), OTHER);
  assert.equal(scale.colourOf(null), MISSING);
  assert.equal(scale.legend.length, 11);
  assert.equal(scale.legend[0].label, "v0 (12)");
});

test("numbers run along a gradient from the lowest to the highest", () => {
  const scale = colourScale([5, 10, 15]);
  assert.equal(scale.colourOf(5), gradient(0));
  assert.equal(scale.colourOf(15), gradient(1));
  assert.equal(gradient(0), "#1f77b4");
  assert.equal(gradient(2), gradient(1));
  assert.equal(colourScale([null]).colourOf(1), MISSING);
});

test("scales map domains linearly and a flat domain to the middle", () => {
  assert.equal(scale(0, 10, 0, 100)(2.5), 25);
  assert.equal(scale(0, 10, 100, 0)(10), 0);
  assert.equal(scale(3, 3, 0, 100)(3), 50);
  assert.deepEqual(extent([2, 7, 4]), [2, 7]);
  assert.deepEqual(extent([5, 5]), [0, 5]);
  assert.deepEqual(extent([]), [0, 1]);
});

const EXPLAIN = [
  { segment: 1, strategy: "hnsw", segment_size: 1000, candidates: 900, estimated: 880, k: 10, ef: 64, reason: "r", rounds: 1, time_ms: 2 },
  { segment: 2, strategy: "filtered_hnsw", segment_size: 1000, candidates: 40, estimated: 300, k: 10, ef: 128, reason: "r", rounds: 2, time_ms: 8 },
  { segment: null, strategy: "exact", segment_size: 12, candidates: 12, estimated: null, k: 10, ef: null, reason: "r", time_ms: 0.5 },
];

test("explain rows flag a wrong estimate and the slowest segment", () => {
  const rows = explainRows(EXPLAIN);
  assert.deepEqual(rows.map((r) => r.segment), ["#1", "#2", "appendable"]);
  assert.deepEqual(rows.map((r) => r.estimateOff), [false, true, false]);
  assert.deepEqual(rows.map((r) => r.slowest), [false, true, false]);
  assert.deepEqual(rows.map((r) => r.share), [0.25, 1, 0.0625]);
  assert.deepEqual(explainRows(undefined), []);
});

test("the explain summary counts strategies and adds up segment time", () => {
  assert.deepEqual(explainSummary(EXPLAIN), { segments: 3, totalMs: 10.5, strategies: { hnsw: 1, filtered_hnsw: 1, exact: 1 } });
});
