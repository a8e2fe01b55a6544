// The search playground: a collection, a vector (JSON array) or a row's id, a filter and a limit; the
// hits come back as a table (rank, id, score, the row's scalar fields).

import { esc } from "./html.js";

export class Playground {
  constructor(form, status, table, post) {
    this.form = form;
    this.status = status;
    this.table = table;
    this.post = post;
    this.collections = [];
    const by = () => form.querySelector("input[name=by]:checked").value;
    form.addEventListener("change", (e) => {
      if (e.target.name === "by") {
        form.querySelector("#pg-vector").hidden = by() !== "vector";
        form.querySelector("#pg-id").hidden = by() !== "id";
      }
      if (e.target.id === "pg-collection") this.fillFields();
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.run(by());
    });
  }

  /** Keeps the collection list in step with the cluster (the selection stays). */
  setCollections(collections) {
    this.collections = collections;
    const select = this.form.querySelector("#pg-collection");
    const keyOf = (c) => `${c.dbName}/${c.name}`;
    const current = select.value;
    const keys = collections.map(keyOf);
    if (keys.join("\n") === [...select.options].map((o) => o.value).join("\n")) return;
    select.innerHTML = collections
      .map((c) => `<option value="${esc(keyOf(c))}">${esc(c.dbName === "default" ? c.name : `${c.dbName}.${c.name}`)}</option>`)
      .join("");
    if (keys.includes(current)) select.value = current;
    this.fillFields();
  }

  selected() {
    const key = this.form.querySelector("#pg-collection").value;
    return this.collections.find((c) => `${c.dbName}/${c.name}` === key);
  }

  fillFields() {
    const c = this.selected();
    const select = this.form.querySelector("#pg-field");
    const vectors = c ? c.schema.fields.filter((f) => f.type === "FloatVector") : [];
    select.innerHTML = vectors.map((f) => `<option>${esc(f.name)}</option>`).join("");
    const area = this.form.querySelector("#pg-vector");
    if (vectors[0]) area.placeholder = `[${Array.from({ length: Math.min(vectors[0].dim, 4) }, (_, i) => (0.1 * (i + 1)).toFixed(1)).join(", ")}${vectors[0].dim > 4 ? ", …" : ""}]  (${vectors[0].dim} numbers)`;
  }

  async run(by) {
    const c = this.selected();
    if (!c) return this.say("pick a collection first", true);
    const f = this.form;
    const body = {
      dbName: c.dbName,
      collectionName: c.name,
      annsField: f.querySelector("#pg-field").value || undefined,
      filter: f.querySelector("#pg-filter").value,
      limit: Number(f.querySelector("#pg-limit").value || 10),
    };
    if (by === "vector") {
      try {
        body.vector = JSON.parse(f.querySelector("#pg-vector").value);
      } catch {
        return this.say("the vector must be a JSON array of numbers, such as [0.1, 0.2]", true);
      }
    } else {
      body.id = f.querySelector("#pg-id").value;
    }
    this.say("searching…");
    try {
      const r = await this.post("search", body);
      this.show(r);
      this.say(`${r.hits.length} hits in ${r.tookMs} ms (field ${r.annsField})`);
    } catch (err) {
      this.clear();
      this.say(err.message, true);
    }
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
    this.status.dataset.state = error ? "error" : text.endsWith("…") ? "running" : "done";
  }

  clear() {
    this.table.querySelector("thead").innerHTML = "";
    this.table.querySelector("tbody").innerHTML = "";
  }

  show(r) {
    const fields = r.outputFields;
    this.table.querySelector("thead").innerHTML = `<tr><th>#</th><th>${esc(r.pkField)}</th><th>score</th>${fields.map((f) => `<th>${esc(f)}</th>`).join("")}</tr>`;
    this.table.querySelector("tbody").innerHTML = r.hits
      .map(
        (h, i) =>
          `<tr><td>${i + 1}</td><td class="id">${esc(h.id)}</td><td>${h.score.toFixed(5)}</td>${fields
            .map((f) => `<td>${esc(typeof h.fields[f] === "object" ? JSON.stringify(h.fields[f]) : h.fields[f] ?? "")}</td>`)
            .join("")}</tr>`,
      )
      .join("");
  }
}
