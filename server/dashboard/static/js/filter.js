// The filter editor's checks (no DOM): JSON syntax errors with line and column, then the
// shape of a Qdrant filter, so a mistake is shown inline before any request is sent.

const CLAUSES = new Set(["must", "should", "must_not", "min_should"]);
const CONDITIONS = new Set(["key", "has_id", "is_empty", "is_null", "nested", "has_vector",
  "must", "should", "must_not", "min_should"]);
const MATCHES = new Set(["match", "range", "geo_bounding_box", "geo_radius", "geo_polygon",
  "values_count", "datetime_range"]);

/** {value} or {error, line, column}; empty text is {value: null}. */
export function parseJson(text) {
  if (!text || !text.trim()) return { value: null };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    const { line, column } = position(text, err.message);
    return { error: err.message.replace(/^JSON\.parse: /, ""), line, column };
  }
}

function position(text, message) {
  const at = /position (\d+)/.exec(message);
  const lineCol = /line (\d+) column (\d+)/.exec(message);
  if (lineCol) return { line: Number(lineCol[1]), column: Number(lineCol[2]) };
  if (!at) return { line: null, column: null };
  const before = text.slice(0, Number(at[1]));
  const lines = before.split("\n");
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** Problems with a filter object, each a string naming where; [] when it looks right. */
export function filterProblems(filter, path = "filter") {
  if (filter === null) return [];
  if (typeof filter !== "object" || Array.isArray(filter)) return [`${path} must be an object`];
  const problems = [];
  for (const [clause, value] of Object.entries(filter)) {
    if (!CLAUSES.has(clause)) {
      problems.push(`${path}: unknown clause "${clause}" (use must, should, must_not)`);
    } else if (clause === "min_should") {
      if (typeof value !== "object" || value === null) problems.push(`${path}.min_should must be an object`);
    } else {
      const list = Array.isArray(value) ? value : [value];
      list.forEach((condition, i) => problems.push(...conditionProblems(condition, `${path}.${clause}[${i}]`)));
    }
  }
  return problems;
}

function conditionProblems(condition, path) {
  if (typeof condition !== "object" || condition === null || Array.isArray(condition)) {
    return [`${path} must be an object`];
  }
  const keys = Object.keys(condition);
  const unknown = keys.filter((k) => !CONDITIONS.has(k) && !MATCHES.has(k));
  if (unknown.length) return [`${path}: unknown field "${unknown[0]}"`];
  if (keys.some((k) => CLAUSES.has(k))) return filterProblems(condition, path);
  if ("key" in condition && !keys.some((k) => MATCHES.has(k))) {
    return [`${path}: a "key" condition needs match, range, values_count or a geo clause`];
  }
  if (keys.some((k) => MATCHES.has(k)) && typeof condition.key !== "string") {
    return [`${path}: "key" must name a payload field`];
  }
  return [];
}

/** The filter typed in an editor: {filter} or {message} to show beside it. */
export function checkFilter(text) {
  const parsed = parseJson(text);
  if (parsed.error) {
    const where = parsed.line ? ` (line ${parsed.line}, column ${parsed.column})` : "";
    return { message: `Invalid JSON${where}: ${parsed.error}` };
  }
  const problems = filterProblems(parsed.value);
  return problems.length ? { message: problems.join("; ") } : { filter: parsed.value };
}
