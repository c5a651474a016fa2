// The planner's per-segment explain entries -> rows and a summary (no DOM), so a slow
// query explains itself: which segment cost the time and whether the estimate was off.

/** An estimate this many times over or under the actual count is flagged. */
const ESTIMATE_OFF = 2;

export function explainRows(explain) {
  const entries = explain ?? [];
  const slowest = Math.max(0, ...entries.map((e) => e.time_ms ?? 0));
  return entries.map((e) => ({
    segment: e.segment === null || e.segment === undefined ? "appendable" : `#${e.segment}`,
    strategy: e.strategy,
    size: e.segment_size,
    candidates: e.candidates,
    estimated: e.estimated ?? null,
    estimateOff: estimateOff(e.estimated, e.candidates),
    k: e.k,
    ef: e.ef ?? null,
    rounds: e.rounds ?? 1,
    timeMs: e.time_ms ?? 0,
    share: slowest > 0 ? (e.time_ms ?? 0) / slowest : 0,
    slowest: entries.length > 1 && slowest > 0 && e.time_ms === slowest,
    reason: e.reason ?? "",
  }));
}

function estimateOff(estimated, actual) {
  if (estimated === null || estimated === undefined) return false;
  const a = Math.max(1, actual);
  const b = Math.max(1, estimated);
  return Math.max(a / b, b / a) >= ESTIMATE_OFF;
}

export function explainSummary(explain) {
  const entries = explain ?? [];
  const strategies = {};
  let total = 0;
  for (const e of entries) {
    strategies[e.strategy] = (strategies[e.strategy] ?? 0) + 1;
    total += e.time_ms ?? 0;
  }
  return { segments: entries.length, totalMs: total, strategies };
}
