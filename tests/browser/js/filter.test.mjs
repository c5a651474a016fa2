// node --test: the filter editor's inline validation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkFilter, filterProblems, parseJson } from "../../../server/dashboard/static/js/filter.js";

test("empty text is no filter", () => {
  assert.deepEqual(parseJson("  "), { value: null });
  assert.deepEqual(checkFilter(""), { filter: null });
});

test("a syntax error names its line and column", () => {
  const parsed = parseJson('{\n  "must": [\n    {"key": "a",, }\n  ]\n}');
  assert.ok(parsed.error);
  assert.equal(parsed.line, 3);
  assert.ok(parsed.column > 1);
  assert.match(checkFilter('{"must": [').message, /^Invalid JSON/);
});

test("a well-formed filter passes, nested clauses included", () => {
  const filter = {
    must: [{ key: "city", match: { value: "Paris" } }, { has_id: [1, 2] }],
    should: [{ must_not: [{ key: "n", range: { gt: 3 } }] }],
    must_not: { is_empty: { key: "tags" } },
  };
  assert.deepEqual(filterProblems(filter), []);
  assert.deepEqual(checkFilter(JSON.stringify(filter)), { filter });
});

test("shape mistakes are named with their path", () => {
  assert.deepEqual(filterProblems([]), ["filter must be an object"]);
  assert.match(filterProblems({ mustt: [] })[0], /unknown clause "mustt"/);
  assert.match(filterProblems({ must: [{ key: "a" }] })[0], /filter\.must\[0\]: a "key" condition needs/);
  assert.match(filterProblems({ must: [{ match: { value: 1 } }] })[0], /"key" must name a payload field/);
  assert.match(filterProblems({ should: [{ should: [{ keyy: "a" }] }] })[0], /filter\.should\[0\]\.should\[0\]: unknown field "keyy"/);
  assert.match(checkFilter('{"must": [3]}').message, /must be an object/);
});
