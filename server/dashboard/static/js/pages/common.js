// Pieces several pages share: the collection picker and a polling loop.

import { call } from "../api.js";
import { h } from "../dom.js";

/** The names the caller may see (names only: cheap even at 1,000 collections). */
export async function collectionNames() {
  const listed = await call("GET", "/collections");
  return listed.collections.map((c) => c.name).sort();
}

/** A <select> of collections that moves to #/page/<name>; null when there are none. */
export async function picker(page, current) {
  const names = await collectionNames();
  if (!names.length) return { names, element: h("p", {}, "No collections yet. ", h("a", { href: "#/collections", text: "Create one" }), ".") };
  const select = h("select", { id: "collection-picker", "aria-label": "Collection" },
    names.map((n) => h("option", { value: n, text: n, selected: n === current })));
  select.addEventListener("change", () => { location.hash = `#/${page}/${encodeURIComponent(select.value)}`; });
  const element = h("div.field.inline", {}, h("label", { for: "collection-picker", text: "Collection" }), select);
  return { names, element, chosen: names.includes(current) ? current : names[0] };
}

/** Runs `tick` now and every `ms` while the tab is visible; returns the stop function.
 * A failed tick (a 403 for a collection-scoped token, a restart) is handed to `failed`
 * and the loop goes on. */
export function poll(tick, ms, failed = () => {}) {
  let timer = 0;
  let stopped = false;
  const loop = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await tick(); failed(null); } catch (err) { if (!stopped) failed(err); }
    }
    if (!stopped) timer = setTimeout(loop, ms);
  };
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}

export function title(text, ...extra) {
  return h("div.title", {}, h("h1", { text }), ...extra);
}
