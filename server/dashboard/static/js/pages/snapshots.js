// Snapshots of one collection: list, create, download (fetched with the key, saved as
// a file), restore (recover from a listed snapshot), upload, delete.

import { call, enc, fetchRaw, send } from "../api.js";
import { confirmTyped, field, h, section, table, toast } from "../dom.js";
import { bytes } from "../format.js";
import { picker, title } from "./common.js";

export async function render(main, [name]) {
  const chosen = await picker("snapshots", name);
  main.append(title("Snapshots", chosen.element));
  if (!chosen.chosen) return;
  const collection = chosen.chosen;
  const base = `/collections/${enc(collection)}/snapshots`;
  const list = h("div", { id: "snapshot-list" });
  const create = h("button", { type: "button", id: "create-snapshot", text: "Take a snapshot", onclick: async () => {
    create.disabled = true;
    try {
      const made = await call("POST", `${base}?wait=true`, {});
      toast(`Snapshot ${made.name} taken`);
      await load();
    } finally { create.disabled = false; }
  } });
  main.append(section("Snapshots", create, list), uploadSection(base, collection));

  async function load() {
    const found = await call("GET", base);
    found.sort((a, b) => (a.creation_time < b.creation_time ? 1 : -1));
    list.replaceChildren(found.length ? table([
      { label: "Name", value: (s) => s.name },
      { label: "Taken", value: (s) => s.creation_time },
      { label: "Size", value: (s) => bytes(s.size), className: "num" },
      { label: "Checksum", value: (s) => h("code", { text: (s.checksum ?? "").slice(0, 16), title: s.checksum ?? "" }) },
      { label: "", value: (s) => h("div.row", {},
        h("button.quiet", { type: "button", text: "Download", onclick: () => download(base, s.name) }),
        h("button.quiet", { type: "button", text: "Restore", onclick: () => restore(base, collection, s.name) }),
        h("button.quiet", { type: "button", text: "Delete", onclick: async () => {
          if (!(await confirmTyped(`Delete snapshot ${s.name}?`, "delete"))) return;
          await call("DELETE", `${base}/${enc(s.name)}?wait=true`);
          await load();
        } })) },
    ], found) : h("p.muted", { text: "No snapshots yet." }));
  }
  await load();
}

async function download(base, name) {
  const response = await fetchRaw(`${base}/${enc(name)}`);
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function restore(base, collection, name) {
  if (!(await confirmTyped(`Replace ${collection} with snapshot ${name}?`, collection))) return;
  await call("PUT", `${base}/recover?wait=true`, { location: name });
  toast(`${collection} restored from ${name}`);
}

function uploadSection(base, collection) {
  const file = h("input", { id: "snapshot-file", type: "file", accept: ".snapshot" });
  const form = h("form", { id: "upload-snapshot" }, field("Snapshot file", file, `recovered into ${collection}, replacing it`),
    h("button", { type: "submit", text: "Upload and restore" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    if (!(await confirmTyped(`Replace ${collection} with ${file.files[0].name}?`, collection))) return;
    const body = new FormData();
    body.append("snapshot", file.files[0]);
    await send("POST", `${base}/upload?wait=true`, body);
    toast(`${collection} restored from the upload`);
  });
  return section("Upload a snapshot", form);
}
