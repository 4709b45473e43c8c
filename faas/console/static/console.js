// faas console: the little that must run in the browser. Pages work without it; this adds
// checks on the start form before it is posted, and a live event log.
"use strict";

function fieldError(el) {
  const v = el.value.trim();
  const d = el.dataset;
  const msg = (k, fallback) => d["msg" + k.charAt(0).toUpperCase() + k.slice(1)] || fallback;
  if (el.type === "checkbox") return "";
  if (!v) return el.required ? msg("required", "required") : "";
  if (el.type === "number") {
    if (el.validity.badInput || isNaN(Number(v))) return msg("type", "must be a number");
    const n = Number(v);
    if (el.step === "1" && !Number.isInteger(n)) return msg("type", "must be an integer");
    if (el.min !== "" && n < Number(el.min)) return msg("minimum", "too small");
    if (el.max !== "" && n > Number(el.max)) return msg("maximum", "too large");
    if (d.exclusiveMinimum !== undefined && n <= Number(d.exclusiveMinimum)) return msg("exclusiveminimum", "too small");
    if (d.exclusiveMaximum !== undefined && n >= Number(d.exclusiveMaximum)) return msg("exclusivemaximum", "too large");
  }
  if (el.minLength > 0 && [...v].length < el.minLength) return msg("minlength", "too short");
  if (el.maxLength > 0 && [...v].length > el.maxLength) return msg("maxlength", "too long");
  if (d.pattern !== undefined) {
    let re = null;
    try { re = new RegExp(d.pattern, "u"); } catch (e) { re = null; }   // the server checks it anyway
    if (re && !re.test(el.value)) return msg("pattern", "does not match the pattern");
  }
  if (d.json !== undefined) { try { JSON.parse(v); } catch (e) { return msg("json", "must be JSON"); } }
  return "";
}

function showError(el) {
  const box = el.closest(".field");
  const text = fieldError(el);
  if (box) {
    box.classList.toggle("invalid", !!text);
    const p = box.querySelector(".field-error");
    if (p) p.textContent = text;
  }
  el.setAttribute("aria-invalid", text ? "true" : "false");
  return !text;
}

document.querySelectorAll("form[data-validate]").forEach((form) => {
  const inputs = () => form.querySelectorAll(".field input, .field select, .field textarea");
  inputs().forEach((el) => {
    el.addEventListener("blur", () => showError(el));
    el.addEventListener("input", () => { if (el.closest(".field").classList.contains("invalid")) showError(el); });
  });
  form.addEventListener("submit", (ev) => {
    let first = null;
    inputs().forEach((el) => { if (!showError(el) && !first) first = el; });
    if (first) { ev.preventDefault(); first.focus(); }
  });
});

document.querySelectorAll("button[data-confirm]").forEach((b) =>
  b.addEventListener("click", (ev) => { if (!confirm(b.dataset.confirm)) ev.preventDefault(); }));

// A run's page: fetch the event log entries after the last one shown, every second, until the
// run ends; a new status redraws the page (it changes which buttons apply).
(function liveRun() {
  const st = document.getElementById("run-status");
  if (!st || st.dataset.done === "true") return;
  const table = document.getElementById("event-log");
  const body = table ? table.querySelector("tbody") : null;
  const count = document.getElementById("log-count");
  let after = table ? table.dataset.after : (count ? count.textContent.trim() : "0");
  const when = (t) => { const d = new Date(typeof t === "number" ? t * 1000 : t);
    return isNaN(d) ? String(t) : d.toISOString().slice(11, 19); };
  function row(e) {
    const tr = document.createElement("tr");
    tr.className = "ev ev-" + e.code + " new";
    const cells = [[e.seq, ""], [when(e.time), "time"], [e.code, "code"], [e.description || "", ""],
                   [e.details ? JSON.stringify(e.details) : "", "wide"]];
    cells.forEach(([text, cls], i) => {
      const td = document.createElement("td");
      if (i === 2 || i === 4) { const code = document.createElement("code"); code.textContent = text; td.appendChild(code); }
      else td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    });
    return tr;
  }
  async function poll() {
    try {
      const r = await fetch(`/api/runs/${st.dataset.runId}/log?after=${after}`,
                            { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.ok) {
        const data = await r.json();
        for (const e of data.entries) {
          if (body) body.appendChild(row(e));
          after = e.seq;
        }
        if (count) count.textContent = after;
        if (data.status !== st.dataset.status) { location.reload(); return; }
      }
    } catch (e) { /* the console restarted or the network blinked: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
