// node --test: Prometheus parsing and the rates the metrics page draws.
import assert from "node:assert/strict";
import { test } from "node:test";
import { meanLatency, parse, rates, sumBy } from "../../../server/dashboard/static/js/prometheus.js";

const SCRAPE = `# HELP quiver_requests_total HTTP requests
# TYPE quiver_requests_total counter
quiver_requests_total{route="/collections/{name}/points/query",method="POST",status="200"} 10.0
quiver_requests_total{route="/collections/{name}/points/query",method="POST",status="400"} 2.0
quiver_requests_total{route="/collections",method="GET",status="200"} 5.0
quiver_request_duration_seconds_sum{route="/collections",method="GET"} 0.5
quiver_request_duration_seconds_count{route="/collections",method="GET"} 5.0
quiver_search_plans_total{strategy="hnsw"} 7.0
weird{label="a \\"quoted\\" value"} 1e3
not a sample line
`;

test("samples keep their labels, escapes included", () => {
  const samples = parse(SCRAPE);
  assert.equal(samples.length, 7);
  assert.deepEqual(samples[0].labels, { route: "/collections/{name}/points/query", method: "POST", status: "200" });
  assert.equal(samples.at(-1).labels.label, 'a "quoted" value');
  assert.equal(samples.at(-1).value, 1000);
});

test("sums group by one label across the others", () => {
  assert.deepEqual(sumBy(parse(SCRAPE), "quiver_requests_total", "route"),
    { "/collections/{name}/points/query": 12, "/collections": 5 });
  assert.deepEqual(sumBy(parse(SCRAPE), "quiver_search_plans_total", "strategy"), { hnsw: 7 });
});

test("rates are increases per second; a reset counts from zero", () => {
  assert.deepEqual(rates({ a: 10, b: 50 }, { a: 30, b: 5, c: 4 }, 2), { a: 10, b: 2.5, c: 2 });
  assert.deepEqual(rates({ a: 1 }, { a: 2 }, 0), {});
});

test("mean latency is the new time over the new calls, only where calls happened", () => {
  const before = parse(SCRAPE);
  const after = parse(SCRAPE.replace("_sum{route=\"/collections\",method=\"GET\"} 0.5", "_sum{route=\"/collections\",method=\"GET\"} 0.8")
    .replace("_count{route=\"/collections\",method=\"GET\"} 5.0", "_count{route=\"/collections\",method=\"GET\"} 8.0"));
  const mean = meanLatency(before, after, "quiver_request_duration_seconds", "route");
  assert.deepEqual(Object.keys(mean), ["/collections"]);
  assert.ok(Math.abs(mean["/collections"] - 0.1) < 1e-9);
  assert.deepEqual(meanLatency(before, before, "quiver_request_duration_seconds", "route"), {});
});
