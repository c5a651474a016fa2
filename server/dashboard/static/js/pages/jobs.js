// Jobs: the background builds of every visible collection, polled each second: progress
// bars, ETA and cancel for running and queued jobs; the history with its errors below.

import { call, enc } from "../api.js";
import { h, section, table, toast } from "../dom.js";
import { count, duration, percent, time } from "../format.js";
import { poll, title } from "./common.js";

const ACTIVE = new Set(["running", "queued"]);

export async function render(main) {
  const active = h("div", { id: "active-jobs" });
  const history = h("div", { id: "job-history" });
  const summary = h("span.muted");
  const problem = h("p.error", { role: "alert" });
  main.append(title("Jobs", summary), problem, section("Running and queued", active), section("History", history));
  return poll(async () => {
    const page = await call("GET", "/jobs?limit=200");
    summary.textContent = `${count(page.active)} active, ${count(page.total)} known`;
    const running = page.jobs.filter((j) => ACTIVE.has(j.state));
    const done = page.jobs.filter((j) => !ACTIVE.has(j.state));
    active.replaceChildren(running.length ? table(ACTIVE_COLUMNS, running) : h("p.muted", { text: "Nothing running." }));
    history.replaceChildren(done.length ? table(HISTORY_COLUMNS, done) : h("p.muted", { text: "No finished jobs yet." }));
  }, 1000, (err) => { problem.textContent = err ? `Not refreshed: ${err.message}` : ""; });
}

const collection = { label: "Collection", value: (j) => h("a", { href: `#/collections/${enc(j.collection)}`, text: j.collection }) };
const kind = { label: "Kind", value: (j) => j.kind };
const segments = { label: "Segments", value: (j) => j.segment_ids.join(", ") };

const ACTIVE_COLUMNS = [
  collection, kind, segments,
  { label: "State", value: (j) => h(`span.state.state-${j.state}`, { text: j.state }) },
  { label: "Progress", value: progress },
  { label: "ETA", value: (j) => duration(j.eta_seconds) },
  { label: "", value: (j) => h("button.quiet", { type: "button", text: "Cancel", "aria-label": `Cancel job ${j.id}`, onclick: () => cancel(j) }) },
];

const HISTORY_COLUMNS = [
  collection, kind, segments,
  { label: "State", value: (j) => h(`span.state.state-${j.state}`, { text: j.state }) },
  { label: "Progress", value: progress },
  { label: "Finished", value: (j) => time(j.finished) },
  { label: "Took", value: (j) => (j.started && j.finished ? duration(j.finished - j.started) : "–") },
  { label: "Error", value: (j) => (j.error ? h("span.error", { text: j.error }) : "") },
];

function progress(job) {
  const label = `${percent(job.progress)} (${count(job.points_done)} / ${count(job.points_total)})`;
  return h("span.progress", {},
    h("progress", { max: 1, value: job.progress ?? 0, "aria-label": `Job ${job.id} progress` }),
    h("span.progress-label", { text: label }));
}

async function cancel(job) {
  await call("POST", `/jobs/${enc(job.id)}/cancel`, {});
  toast(`Cancelled job ${job.id}`);
}
