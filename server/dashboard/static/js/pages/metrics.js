// Metrics: /metrics scraped every 2 s; request rate and mean latency per route over the
// last two minutes, the planner's strategy counts and build durations per kind.

import { fetchRaw } from "../api.js";
import { h, section } from "../dom.js";
import { barChart, lineChart } from "../chart.js";
import { PALETTE } from "../colors.js";
import { meanLatency, parse, rates, sumBy } from "../prometheus.js";
import { poll, title } from "./common.js";

const EVERY_MS = 2000;
const KEEP = 60;
const TOP_ROUTES = 6;

export async function render(main) {
  const rate = h("div", { id: "chart-rate" });
  const latency = h("div", { id: "chart-latency" });
  const plans = h("div", { id: "chart-plans" });
  const builds = h("div", { id: "chart-builds" });
  const problem = h("p.error", { role: "alert" });
  main.append(title("Metrics"), problem, h("div.cards", {},
    section("Requests per second, by route", rate), section("Mean latency, by route", latency),
    section("Planner strategies (per segment searched)", plans), section("Build jobs: count and mean duration", builds)));
  const history = { rate: [], latency: [] };
  let previous = null;
  return poll(async () => {
    const samples = parse(await (await fetchRaw("/metrics")).text());
    const now = Date.now() / 1000;
    if (previous) {
      const seconds = now - previous.at;
      remember(history.rate, now, rates(sumBy(previous.samples, "quiver_requests_total", "route"), sumBy(samples, "quiver_requests_total", "route"), seconds));
      remember(history.latency, now, meanLatency(previous.samples, samples, "quiver_request_duration_seconds", "route"));
      rate.replaceChildren(legendChart(history.rate, { unit: "/s", format: (v) => v.toFixed(1) }));
      latency.replaceChildren(legendChart(history.latency, { unit: " ms", format: (v) => (v * 1000).toFixed(1) }));
    } else {
      rate.replaceChildren(h("p.muted", { text: "Collecting (a rate needs two scrapes)…" }));
    }
    previous = { at: now, samples };
    plans.replaceChildren(barChart(sumBy(samples, "quiver_search_plans_total", "strategy")));
    builds.replaceChildren(buildTable(samples));
  }, EVERY_MS, (err) => { problem.textContent = err ? `Not refreshed: ${err.message}` : ""; });
}

function remember(list, at, values) {
  list.push({ at, values });
  if (list.length > KEEP) list.shift();
}

function legendChart(history, options) {
  const totals = {};
  for (const { values } of history) for (const [k, v] of Object.entries(values)) totals[k] = (totals[k] ?? 0) + v;
  const routes = Object.keys(totals).sort((a, b) => totals[b] - totals[a]).slice(0, TOP_ROUTES);
  const series = routes.map((route, i) => ({ name: route, colour: PALETTE[i], points: history.filter((s) => route in s.values).map((s) => [s.at, s.values[route]]) }));
  const legend = h("ul.legend", {}, series.map((s) => {
    const swatch = h("span.swatch");
    swatch.style.background = s.colour;
    return h("li", {}, swatch, s.name);
  }));
  return h("div", {}, lineChart(series, options), legend);
}

function buildTable(samples) {
  const counts = sumBy(samples, "quiver_index_build_duration_seconds_count", "kind");
  const sums = sumBy(samples, "quiver_index_build_duration_seconds_sum", "kind");
  const kinds = Object.keys(counts).filter((k) => counts[k] > 0);
  if (!kinds.length) return h("p.muted", { text: "No build has finished since the server started." });
  const means = Object.fromEntries(kinds.map((k) => [`${k} (${counts[k]})`, sums[k] / counts[k]]));
  return barChart(means, { format: (v) => `${v.toFixed(2)} s` });
}
