// Building DOM without innerHTML: every value from the server becomes a text node, so a
// payload can never inject markup or script into the page that holds the API key.

/** h("tag.class", {attr: value, onclick: fn}, ...children) */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      el.textContent = String(value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A table from column specs {label, value(row) -> Node|string, className?}. */
export function table(columns, rows, { caption, onRow, rowLabel } = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c.label }))));
  const body = h("tbody", {}, rows.map((row) => {
    const tr = h("tr", {}, columns.map((c) => h(`td${c.className ? "." + c.className : ""}`, {}, c.value(row))));
    if (onRow) {
      tr.tabIndex = 0;
      tr.classList.add("clickable");
      if (rowLabel) tr.setAttribute("aria-label", rowLabel(row));
      tr.addEventListener("click", () => onRow(row, tr));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onRow(row, tr); } });
    }
    return tr;
  }));
  return h("div.table-wrap", {}, h("table", {}, caption ? h("caption", { text: caption }) : null, head, body));
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div.field", {}, h("label", { for: id, text: label }), control, hint ? h("small", { text: hint }) : null);
}

export function section(title, ...children) {
  return h("section.card", {}, h("h2", { text: title }), ...children);
}

export function pre(value) {
  return h("pre.json", { text: typeof value === "string" ? value : JSON.stringify(value, null, 2) });
}

let toastTimer = 0;
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ""; }, 4000);
}

/** A confirm dialog that needs the user to type `word` (deleting, replacing). */
export function confirmTyped(message, word) {
  return new Promise((resolve) => {
    const input = h("input", { type: "text", autocomplete: "off", "aria-label": `Type ${word} to confirm` });
    const ok = h("button.danger", { type: "submit", text: "Confirm", disabled: true });
    const dialog = h("dialog.confirm", {},
      h("form", { method: "dialog" },
        h("p", { text: message }),
        h("p", {}, "Type ", h("code", { text: word }), " to confirm."),
        input,
        h("div.row", {}, ok, h("button.quiet", { type: "button", text: "Cancel", onclick: () => dialog.close("cancel") }))));
    input.addEventListener("input", () => { ok.disabled = input.value !== word; });
    dialog.addEventListener("close", () => { dialog.remove(); resolve(dialog.returnValue !== "cancel" && input.value === word); });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}
