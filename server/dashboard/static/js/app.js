// The shell: the key dialog, hash routing (#/page/collection) and the page modules.

import { call, session, ApiError } from "./api.js";
import { clear, h, toast } from "./dom.js";
import * as collections from "./pages/collections.js";
import * as jobs from "./pages/jobs.js";
import * as points from "./pages/points.js";
import * as search from "./pages/search.js";
import * as explore from "./pages/explore.js";
import * as snapshots from "./pages/snapshots.js";
import * as metrics from "./pages/metrics.js";

const PAGES = { collections, jobs, points, search, explore, snapshots, metrics };
const main = document.getElementById("main");
const dialog = document.getElementById("key-dialog");
let leave = null;

function route() {
  const [page = "collections", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page: PAGES[page] ? page : "collections", args: rest.map(decodeURIComponent) };
}

async function show() {
  if (leave) { leave(); leave = null; }
  const { page, args } = route();
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.dataset.page === page);
  }
  clear(main);
  main.dataset.page = page;
  try {
    leave = (await PAGES[page].render(main, args)) ?? null;
  } catch (err) {
    failed(err);
  }
}

export function failed(err) {
  if (err instanceof ApiError && err.status === 401) {
    askKey("The server refused the key: " + err.message);
    return;
  }
  toast(err.message ?? String(err), "error");
}
window.addEventListener("unhandledrejection", (event) => { event.preventDefault(); failed(event.reason); });

function askKey(message = "") {
  document.getElementById("key-error").textContent = message;
  if (!dialog.open) dialog.showModal();
  document.getElementById("key-input").focus();
}

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("key-input");
  session.key = input.value;
  try {
    await call("GET", "/collections");
  } catch (err) {
    session.forget();
    document.getElementById("key-error").textContent = err.message;
    return;
  }
  input.value = "";
  dialog.close();
  show();
});
dialog.addEventListener("cancel", (event) => event.preventDefault());

document.getElementById("forget-key").addEventListener("click", () => {
  session.forget();
  if (leave) { leave(); leave = null; }
  clear(main).append(h("p", { text: "Key forgotten." }));
  askKey();
});

window.addEventListener("hashchange", show);
if (session.connected) show(); else askKey();
