// node --test: the dashboard's pure formatting helpers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bytes, duration, percent, pointId, preview, statusClass, vectorList } from "../../../server/dashboard/static/js/format.js";

test("bytes use binary units with sensible precision", () => {
  assert.equal(bytes(0), "0 B");
  assert.equal(bytes(1023), "1023 B");
  assert.equal(bytes(1536), "1.50 KiB");
  assert.equal(bytes(84 * 1024 * 1024), "84.0 MiB");
  assert.equal(bytes(null), "–");
});

test("durations read as seconds, minutes or hours", () => {
  assert.equal(duration(4.4), "4 s");
  assert.equal(duration(185), "3 min 5 s");
  assert.equal(duration(7800), "2 h 10 min");
  assert.equal(duration(null), "–");
  assert.equal(duration(Infinity), "–");
});

test("percent keeps a decimal only where it says something", () => {
  assert.equal(percent(1), "100%");
  assert.equal(percent(0), "0%");
  assert.equal(percent(0.4567), "45.7%");
  assert.equal(percent(undefined), "–");
});

test("status colours map to classes, unknown ones to a neutral class", () => {
  assert.equal(statusClass("green"), "status-green");
  assert.equal(statusClass("red"), "status-red");
  assert.equal(statusClass("purple"), "status-unknown");
});

test("a typed id is an integer when it is digits, else a UUID string", () => {
  assert.equal(pointId(" 42 "), 42);
  assert.equal(pointId("5c56c793-69f3-4fbf-87e6-c4bf54c28c26"), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
});

test("previews are cut with an ellipsis", () => {
  assert.equal(preview({ a: 1 }), '{"a":1}');
  assert.equal(preview("x".repeat(10), 5), "xxxx…");
  assert.equal(preview(null), "");
});

test("vector configs, named and unnamed, become one list", () => {
  assert.deepEqual(vectorList({ size: 4, distance: "Dot" }), [{ name: "", size: 4, distance: "Dot", multi: false }]);
  assert.deepEqual(vectorList({ a: { size: 2, distance: "Cosine", multivector_config: { comparator: "max_sim" } } }),
    [{ name: "a", size: 2, distance: "Cosine", multi: true }]);
});
