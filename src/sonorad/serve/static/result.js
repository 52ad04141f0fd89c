// sonorad risk calculator page: the result panel, in the study's words. Every part the server may
// leave out (an older bundle, a statistic that could not be computed) reads "not available" with
// the server's reason instead of disappearing.
"use strict";

const Result = (() => {
  const $ = (id) => document.getElementById(id);

  function num(v, digits) {
    if (v === null || v === undefined || v === "") return "—";
    if (typeof v !== "number") return String(v);
    const text = Number.isInteger(v) ? String(v) : v.toFixed(digits === undefined ? 3 : digits);
    return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;  // no "-0.0" for a tiny negative
  }

  // A server note may already start with "not available: ".
  const missing = (note) => (note ? `not available: ${String(note).replace(/^not available:\s*/, "")}` : "not available");
  const fixed = (v, digits) => (typeof v === "number" ? v.toFixed(digits) : num(v));
  const range = (low, high, digits) => `${fixed(low, digits)}–${fixed(high, digits)}`;

  // "2026-12-06T21:40:12Z" -> "2026-12-06 21:40:12 UTC" (the server's clock, not the browser's).
  function when(iso) {
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$/.exec(String(iso || ""));
    if (!m) return iso ? String(iso) : null;
    return `${m[1]} ${m[2]} ${!m[3] || m[3] === "Z" ? "UTC" : m[3]}`;
  }

  function text(id, value) { $(id).textContent = value; }

  function renderHeadline(answer) {
    const r = answer.result;
    const p = Number(r.probability);
    const outcome = r.outcome && r.outcome.name;
    text("probability-label", outcome ? `Probability of ${outcome}` : "Probability (outcome name not available)");
    const out = $("probability");
    out.textContent = `${p.toFixed(4)} (${(100 * p).toFixed(1)}%)`;
    out.dataset.value = String(r.probability);
    const sens = r.roi_sensitivity;
    if (sens) {
      text("roi-range", `(${range(sens.low, sens.high, 3)} when the outline is shrunk or grown by ${num(sens.pixels)} px)`);
      $("roi-range").title = sens.method || "";
    } else {
      text("roi-range", `(range under a changed outline: ${missing(r.roi_sensitivity_note)})`);
      $("roi-range").title = "";
    }
    $("risk-group").textContent = r.risk_group === null || r.risk_group === undefined ? missing() : r.risk_group;
    $("risk-group").className = `group-${String(r.risk_group).toLowerCase().replace(/[^a-z]+/g, "-")}`;
    text("cutoff", num(r.cutoff, 3));
    text("model-name", r.model ? `Model: ${r.model}` : "");
    const u = r.uncertainty;
    text("uncertainty", u
      ? `${num(100 * (u.level === undefined ? 0.95 : u.level), 0)}% uncertainty interval for this patient: ` +
        `${range(u.low, u.high, 3)} (${u.method || "method not stated"})`
      : `Uncertainty interval for this patient: ${missing(r.uncertainty_note)}`);
  }

  function renderPerformance(r) {
    const perf = r.performance_at_cutoff;
    const body = document.querySelector("#performance tbody");
    body.textContent = "";
    $("performance").hidden = !perf;
    if (!perf) {
      text("performance-note", `Sensitivity, specificity, PPV and NPV at the cut-off: ${missing(r.performance_note)}`);
      return;
    }
    const tr = document.createElement("tr");
    ["sensitivity", "specificity", "ppv", "npv"].forEach((key) => {
      const m = perf[key];
      const td = document.createElement("td");
      td.dataset.metric = key;
      td.textContent = m && m.value !== null && m.value !== undefined
        ? `${fixed(m.value, 2)} (${range(m.low, m.high, 2)})` : missing(m && m.note);
      tr.appendChild(td);
    });
    body.appendChild(tr);
    const n = perf.n === undefined || perf.n === null ? "" : `, n = ${perf.n}`;
    text("performance-note", `In the ${perf.cohort || "(cohort not stated)"} cohort${n}, at the cut-off ` +
      `${num(perf.cutoff === undefined ? r.cutoff : perf.cutoff, 3)}; 95% CIs in brackets` +
      (perf.method ? ` (${perf.method}).` : "."));
  }

  function renderWarnings(warnings) {
    const list = $("warnings");
    list.textContent = "";
    (warnings || []).forEach((w) => {
      const li = document.createElement("li");
      li.textContent = typeof w === "string" ? w : (w.message || JSON.stringify(w));
      list.appendChild(li);
    });
    $("warnings-box").hidden = !(warnings && warnings.length);
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(name, attrs, content) {
    const el = document.createElementNS(SVG, name);
    Object.entries(attrs).forEach(([key, v]) => el.setAttribute(key, v));
    if (content !== undefined) el.textContent = content;
    return el;
  }

  // The predictor in the study's words with its value as entered (category label, number with unit);
  // a server that sends no label gets the column name, flagged.
  function contributionName(c, fields) {
    let shown = c.display ?? (c.value === null || c.value === undefined ? null : num(c.value, 2));
    const field = (fields || []).find((f) => f.name === c.feature);
    // A 0/1 variable reads Yes / No (the server's display already carries a number's unit).
    if (field && field.input === "yesno" && shown !== null) shown = shownValue(field, shown);
    const name = c.label || `${c.feature} (no description)`;
    return shown === null || shown === "" ? name : `${name} = ${shown}`;
  }

  function renderWaterfall(contributions, base, scale, fields) {
    const box = $("shap");
    box.textContent = "";
    if (!contributions || !contributions.length) {
      box.textContent = "No SHAP contributions for this model.";
      return;
    }
    const bars = contributions.slice().sort((a, b) => Math.abs(b.shap) - Math.abs(a.shap));
    const start = Number(base || 0);
    let cum = start;
    const steps = bars.map((c) => { const from = cum; cum += c.shap; return {c, from, to: cum}; });
    const lo = Math.min(start, ...steps.map((st) => Math.min(st.from, st.to)));
    const hi = Math.max(start, ...steps.map((st) => Math.max(st.from, st.to)));
    const width = 600, labelW = 290, row = 22, top = 24, plotW = width - labelW - 50;
    const height = top + row * steps.length + 36;
    const x = (v) => labelW + (hi > lo ? (v - lo) / (hi - lo) : 0.5) * plotW;
    const svg = svgEl("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
      "aria-label": "SHAP waterfall"});
    svg.appendChild(svgEl("text", {x: x(start), y: 14, "text-anchor": x(start) > width - 60 ? "end" : "middle", class: "axis"},
      `base ${num(start)}`));
    svg.appendChild(svgEl("line", {x1: x(start), x2: x(start), y1: 18, y2: height - 30, class: "base"}));
    steps.forEach((st, i) => {
      const y = top + i * row;
      const name = contributionName(st.c, fields);
      const label = svgEl("text", {x: labelW - 6, y: y + 15, "text-anchor": "end", class: "label"},
        name.length > 46 ? name.slice(0, 44) + "…" : name);
      label.dataset.label = name;
      label.appendChild(svgEl("title", {}, name));
      svg.appendChild(label);
      const x0 = Math.min(x(st.from), x(st.to)), w = Math.max(Math.abs(x(st.to) - x(st.from)), 1);
      svg.appendChild(svgEl("rect", {x: x0, y: y + 3, width: w, height: row - 6, class: st.c.shap >= 0 ? "up" : "down"}));
      svg.appendChild(svgEl("text", {x: x0 + w + 4, y: y + 15, class: "value"}, `${st.c.shap >= 0 ? "+" : ""}${num(st.c.shap)}`));
    });
    const end = steps[steps.length - 1].to;
    svg.appendChild(svgEl("line", {x1: x(end), x2: x(end), y1: 18, y2: height - 30, class: "end"}));
    // the axis labels stay inside the figure: anchored at their end near the right edge
    const anchor = (at) => (at > width - 90 ? {x: width - 2, "text-anchor": "end"} : {x: at, "text-anchor": "middle"});
    svg.appendChild(svgEl("text", {...anchor(x(end)), y: height - 14, class: "axis"},
      `base + these ${bars.length}: ${num(end)}`));
    box.appendChild(svg);
    text("shap-caption", `SHAP waterfall of the ${bars.length} largest contributions` +
      (scale ? ` (${scale} scale)` : "") + ": how each input moved this patient's prediction from the model's base value.");
  }

  function renderNomogram(nomogram) {
    const body = document.querySelector("#nomogram tbody");
    body.textContent = "";
    if (!nomogram || !nomogram.points) { $("nomogram-box").hidden = true; return; }
    const labels = nomogram.labels || {};
    const entries = Object.entries(nomogram.points).map(([name, value]) => [labels[name] || name, value]);
    if (nomogram.total_points !== undefined) entries.push(["Total points", nomogram.total_points]);
    entries.forEach(([name, value]) => {
      const tr = document.createElement("tr");
      [name, num(value, 1)].forEach((t) => { const td = document.createElement("td"); td.textContent = t; tr.appendChild(td); });
      body.appendChild(tr);
    });
    $("nomogram-box").hidden = !entries.length;
  }

  // A value as the form showed it: Yes / No for 0/1 variables, the number with its unit.
  function shownValue(field, value) {
    if (value === null || value === undefined) return "— (imputed)";
    const text = String(value);
    if (field.input === "yesno" && (field.choices || []).join() === "0,1" && (text === "0" || text === "1")) {
      return text === "1" ? "Yes" : "No";
    }
    if (field.input === "number" && field.unit && !text.endsWith(field.unit)) return `${text} ${field.unit}`;
    return text;
  }

  const ROI_SOURCES = {file: "mask file", drawn: "drawn", proposed: "proposed by the segmentation model",
                       edited: "proposed, then edited"};

  function renderInputs(inputs, fields) {
    const body = document.querySelector("#inputs tbody");
    body.textContent = "";
    const rows = fields.map((f) => [f.label, shownValue(f, inputs.variables[f.name])]);
    rows.push(["Image", `${inputs.image.filename}, ${inputs.image.cols} × ${inputs.image.rows} px`]);
    rows.push(["ROI", ROI_SOURCES[inputs.roi_source] || String(inputs.roi_source)]);
    rows.forEach(([name, value]) => {
      const tr = document.createElement("tr");
      [name, value].forEach((t) => { const td = document.createElement("td"); td.textContent = t; tr.appendChild(td); });
      body.appendChild(tr);
    });
  }

  function renderRoiUsed(mask, preview) {
    const canvas = $("roi-used");
    canvas.width = mask.cols;
    canvas.height = mask.rows;
    const ctx = canvas.getContext("2d");
    if (preview) ctx.drawImage(preview, 0, 0);
    const img = new Image();
    img.onload = () => ctx.drawImage(Roi.tintMask(img, mask.cols, mask.rows, [0, 200, 255], 110), 0, 0);
    img.src = `data:image/png;base64,${mask.data}`;
  }

  function render(answer, fields, preview) {
    const r = answer.result;
    renderHeadline(answer);
    renderPerformance(r);
    const b = answer.bundle || {};
    const scored = when(answer.scored_at);
    text("scored", `${scored ? `Scored ${scored}` : `Date and time of scoring: ${missing("the server did not send them")}`}` +
      ` · model bundle ${b.id || missing()}`);
    text("result-case", `· ${answer.inputs.case_id}`);
    renderWarnings(r.warnings);
    renderWaterfall(r.contributions, r.base_value, r.shap_output, fields);
    $("gradcam-figure").hidden = !r.gradcam;
    if (r.gradcam) $("gradcam").src = r.gradcam;
    renderNomogram(r.nomogram);
    renderInputs(answer.inputs, fields);
    renderRoiUsed(answer.mask, preview);
    text("result-meta", `Image ${answer.inputs.image.filename} (${answer.inputs.image.cols} × ${answer.inputs.image.rows}), ` +
      `ROI ${answer.mask.pixels} pixels (${answer.inputs.roi_source}); bundle sha256 ${b.sha256}; sonorad ${answer.sonorad_version}.`);
  }

  return {render, num};
})();
