// sonorad risk calculator page: image upload, ROI drawing (polygon, brush, eraser, undo), the form
// built from the model's variable schema, the prediction and its explanation. No external scripts.
"use strict";

const state = {
  fields: [],          // form fields from /api/schema
  spacing: null,       // the bundle's pixel-spacing rule from /api/schema
  fileHasSpacing: true, // whether the loaded image records its pixel size
  imageFile: null,     // the File the user chose (sent again with the prediction)
  maskFile: null,
  preview: null,       // HTMLImageElement of the gray image as sonorad reads it
  rows: 0, cols: 0,
  shapes: [],          // finished ROI shapes, in image pixel coordinates
  current: null,       // polygon or stroke being drawn
  result: null,        // last JSON answer of /api/predict
};

const $ = (id) => document.getElementById(id);

function showError(message, fix) {
  const box = $("error");
  box.textContent = fix ? `${message} Fix: ${fix}` : message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
  document.querySelectorAll(".field.invalid").forEach((el) => {
    el.classList.remove("invalid");
    const msg = el.querySelector(".field-error");
    if (msg) msg.textContent = "";
  });
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
  let body = null;
  try { body = await response.json(); } catch (e) { body = {error: `the server answered ${response.status}`}; }
  return {ok: response.ok, status: response.status, body};
}

// ------------------------------------------------------------------------------ schema and form

function fieldInput(field) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  wrap.dataset.name = field.name;
  const id = `var-${field.name}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = field.label + (field.required ? " *" : "");
  wrap.appendChild(label);
  let control;
  if (field.input === "number") {
    control = document.createElement("input");
    control.type = "number";
    control.step = "any";
    if (field.range) control.placeholder = `${field.range[0]} – ${field.range[1]}`;
  } else {
    control = document.createElement("select");
    const empty = document.createElement("option");
    empty.value = "";
    empty.textContent = field.input === "yesno" ? "—" : "choose…";
    control.appendChild(empty);
    // A yes/no variable lists its level coded 1 first; 0/1 levels read as Yes / No.
    const plain = field.input === "yesno" && field.choices.join() === "0,1";
    const order = field.input === "yesno" ? [1, 0] : field.choices.map((_, i) => i);
    order.forEach((i) => {
      const opt = document.createElement("option");
      opt.value = String(i);
      opt.textContent = plain ? (i ? "Yes" : "No") : String(field.choices[i]);
      control.appendChild(opt);
    });
  }
  control.id = id;
  control.name = field.name;
  wrap.appendChild(control);
  const hint = [];
  if (field.unit) hint.push(field.unit);
  if (field.range) hint.push(`training range ${field.range[0]} – ${field.range[1]}`);
  if (field.plausible_range) hint.push(`accepted ${field.plausible_range[0]} – ${field.plausible_range[1]}`);
  if (field.type === "ordinal") hint.push("ordered");
  if (!field.required) hint.push("optional: left empty, the model imputes it");
  if (hint.length) {
    const small = document.createElement("span");
    small.className = "hint";
    small.textContent = hint.join("; ");
    wrap.appendChild(small);
  }
  const err = document.createElement("span");
  err.className = "field-error";
  wrap.appendChild(err);
  return wrap;
}

function renderForm(fields) {
  const box = $("fields");
  box.textContent = "";
  if (!fields.length) {
    box.innerHTML = "<p class=\"info\">This model uses no clinical variables.</p>";
    return;
  }
  fields.forEach((f) => box.appendChild(fieldInput(f)));
}

function formValues() {
  const values = {};
  for (const field of state.fields) {
    const control = $(`var-${field.name}`);
    const raw = control.value;
    if (raw === "") continue;           // missing: the server says whether it is required
    values[field.name] = field.input === "number" ? Number(raw) : field.choices[Number(raw)];
  }
  return values;
}

async function loadSchema() {
  const answer = await api("/api/schema");
  if (answer.status === 401) {
    $("login").hidden = false;
    $("calculator").hidden = true;
    return;
  }
  if (!answer.ok) { showError(answer.body.error || "cannot load the model's variables"); return; }
  state.fields = answer.body.variables;
  state.spacing = answer.body.spacing || null;
  renderForm(state.fields);
  showPixelSize();
  $("research-use").textContent = answer.body.research_use;
  const b = answer.body.bundle;
  $("bundle-info").textContent = `Model bundle sha256 ${b.sha256}`;
}

// ---------------------------------------------------------------------------------- the image

async function loadImage(file) {
  clearError();
  state.imageFile = file;
  state.shapes = [];
  state.current = null;
  $("image-info").textContent = "Reading the image…";
  const data = new FormData();
  data.append("image", file, file.name);
  const answer = await api("/api/image", {method: "POST", body: data});
  if (!answer.ok) {
    state.imageFile = null;
    state.preview = null;
    $("image-info").textContent = "No image loaded.";
    showError(answer.body.error, answer.body.fix);
    redraw();
    return;
  }
  const info = answer.body;
  state.rows = info.rows;
  state.cols = info.cols;
  const img = new Image();
  img.onload = () => {
    state.preview = img;
    const canvas = $("roi-canvas");
    canvas.width = info.cols;
    canvas.height = info.rows;
    canvas.dataset.ready = "1";
    redraw();
  };
  img.src = info.preview;
  const spacing = info.spacing_source === "none" ? "no pixel spacing in the file"
    : `pixel ${info.spacing_mm.map((s) => s.toFixed(3)).join(" × ")} mm`;
  $("image-info").textContent = `${file.name}: ${info.format.toUpperCase()}, ${info.cols} × ${info.rows} pixels, ${spacing}`;
  state.fileHasSpacing = info.spacing_source !== "none";
  showPixelSize();
}

// The pixel size is asked for when the model resamples every image to one spacing and the file
// (PNG, JPEG, BMP) records none; a value given is used as the image's spacing.
function showPixelSize() {
  const rule = state.spacing;
  const ask = Boolean(rule && rule.asks_pixel_size && !state.fileHasSpacing);
  $("pixel-size-field").hidden = !ask;
  if (ask) {
    $("pixel-size-note").textContent =
      `required: this model resamples every image to ${rule.spacing_mm} mm per pixel and the file records no pixel size`;
  }
}

// ------------------------------------------------------------------------------------ drawing

function tool() { return document.querySelector("input[name=tool]:checked").value; }
function radius() { return Number($("brush-radius").value); }

function toImage(event) {
  const canvas = $("roi-canvas");
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

function screenScale() {
  const canvas = $("roi-canvas");
  return canvas.width / canvas.getBoundingClientRect().width;
}

function paintShape(ctx, shape) {
  if (shape.type === "polygon") {
    ctx.globalCompositeOperation = "source-over";
    ctx.beginPath();
    shape.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.fill("evenodd");
    return;
  }
  ctx.globalCompositeOperation = shape.type === "erase" ? "destination-out" : "source-over";
  ctx.lineWidth = 2 * shape.radius;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  shape.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  if (shape.points.length === 1) ctx.lineTo(shape.points[0][0] + 0.01, shape.points[0][1]);
  ctx.stroke();
}

function redraw() {
  const canvas = $("roi-canvas");
  const ctx = canvas.getContext("2d");
  ctx.globalCompositeOperation = "source-over";
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.preview) {
    ctx.fillStyle = "#222";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    return;
  }
  ctx.drawImage(state.preview, 0, 0);
  // The ROI is painted opaque on its own layer (so the eraser can cut it), then laid over the image.
  const layer = document.createElement("canvas");
  layer.width = canvas.width;
  layer.height = canvas.height;
  const lctx = layer.getContext("2d");
  lctx.fillStyle = lctx.strokeStyle = "rgb(255, 196, 0)";
  const shapes = state.current && state.current.type !== "polygon" ? state.shapes.concat([state.current]) : state.shapes;
  shapes.forEach((s) => paintShape(lctx, s));
  ctx.globalAlpha = 0.45;
  ctx.drawImage(layer, 0, 0);
  ctx.globalAlpha = 1;
  if (state.current && state.current.type === "polygon") {
    const s = screenScale();
    ctx.strokeStyle = "rgb(255, 196, 0)";
    ctx.fillStyle = "rgb(255, 64, 64)";
    ctx.lineWidth = 2 * s;
    ctx.beginPath();
    state.current.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    state.current.points.forEach(([x, y]) => ctx.fillRect(x - 3 * s, y - 3 * s, 6 * s, 6 * s));
  }
  updateRoiInfo();
}

function updateRoiInfo() {
  const n = state.shapes.length;
  let text = n ? `${n} shape${n > 1 ? "s" : ""} drawn.` : "No ROI drawn.";
  if (state.current && state.current.type === "polygon") text += ` Polygon in progress: ${state.current.points.length} points.`;
  if (state.maskFile) text = `The mask file ${state.maskFile.name} will be used (the drawing is ignored).`;
  $("roi-info").textContent = text;
}

function closePolygon() {
  const poly = state.current;
  if (!poly || poly.type !== "polygon") return;
  if (poly.points.length >= 3) state.shapes.push(poly);
  state.current = null;
  redraw();
}

function onPointerDown(event) {
  if (!state.preview || event.button !== 0) return;
  const point = toImage(event);
  if (tool() === "polygon") {
    if (!state.current || state.current.type !== "polygon") state.current = {type: "polygon", points: []};
    const pts = state.current.points;
    if (pts.length >= 3) {
      const [x0, y0] = pts[0];
      const near = 8 * screenScale();
      if (Math.hypot(point[0] - x0, point[1] - y0) <= near) { closePolygon(); return; }
    }
    pts.push(point);
  } else {
    state.current = {type: tool(), radius: radius(), points: [point]};
    $("roi-canvas").setPointerCapture(event.pointerId);
  }
  redraw();
}

function onPointerMove(event) {
  if (!state.current || state.current.type === "polygon") return;
  state.current.points.push(toImage(event));
  redraw();
}

function onPointerUp() {
  if (!state.current || state.current.type === "polygon") return;
  state.shapes.push(state.current);
  state.current = null;
  redraw();
}

function onDoubleClick(event) {
  event.preventDefault();
  const poly = state.current;
  if (poly && poly.type === "polygon") {
    // The two clicks of a double-click each added a point at the same place: keep one.
    while (poly.points.length > 3) {
      const [a, b] = poly.points.slice(-2);
      if (Math.hypot(a[0] - b[0], a[1] - b[1]) > 2 * screenScale()) break;
      poly.points.pop();
    }
    closePolygon();
  }
}

function undo() {
  if (state.current && state.current.type === "polygon" && state.current.points.length) {
    state.current.points.pop();
    if (!state.current.points.length) state.current = null;
  } else {
    state.current = null;
    state.shapes.pop();
  }
  redraw();
}

function roiJson() {
  const round = (v) => Math.round(v * 100) / 100;
  return JSON.stringify({shapes: state.shapes.map((s) => {
    const out = {type: s.type, points: s.points.map(([x, y]) => [round(x), round(y)])};
    if (s.type !== "polygon") out.radius = s.radius;
    return out;
  })});
}

// ------------------------------------------------------------------------------------- predict

async function submit(event) {
  event.preventDefault();
  clearError();
  if (!state.imageFile) { showError("Choose an ultrasound image first."); return; }
  if (state.current && state.current.type === "polygon") closePolygon();
  const data = new FormData();
  data.append("image", state.imageFile, state.imageFile.name);
  if (state.maskFile) data.append("mask", state.maskFile, state.maskFile.name);
  else if (state.shapes.length) data.append("roi", roiJson());
  data.append("variables", JSON.stringify(formValues()));
  data.append("case_id", $("case-id").value || "case");
  if (!$("pixel-size-field").hidden && $("pixel-size").value.trim()) {
    data.append("pixel_size_mm", $("pixel-size").value.trim());
  }
  $("submit").disabled = true;
  $("busy").hidden = false;
  try {
    const answer = await api("/api/predict", {method: "POST", body: data});
    if (!answer.ok) {
      showError(answer.body.error, answer.body.fix);
      const wrap = document.querySelector(`.field[data-name="${CSS.escape(answer.body.field || "")}"]`);
      if (wrap) {
        wrap.classList.add("invalid");
        wrap.querySelector(".field-error").textContent = answer.body.error;
      }
      return;
    }
    state.result = answer.body;
    renderResult(answer.body);
  } catch (e) {
    showError(`The request failed: ${e}`);
  } finally {
    $("submit").disabled = false;
    $("busy").hidden = true;
  }
}

function formatNumber(v, digits) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  const text = Number.isInteger(v) ? String(v) : v.toFixed(digits === undefined ? 3 : digits);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;  // no "-0.0" for a tiny negative
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
function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function renderWaterfall(contributions, base, scale) {
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
  const lo = Math.min(start, ...steps.map((s) => Math.min(s.from, s.to)));
  const hi = Math.max(start, ...steps.map((s) => Math.max(s.from, s.to)));
  const width = 560, labelW = 230, row = 22, top = 24, plotW = width - labelW - 50;
  const height = top + row * steps.length + 36;
  const x = (v) => labelW + (hi > lo ? (v - lo) / (hi - lo) : 0.5) * plotW;
  const svg = svgEl("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-label": "SHAP waterfall"});
  svg.appendChild(svgEl("text", {x: x(start), y: 14, "text-anchor": "middle", class: "axis"}, `base ${formatNumber(start)}`));
  svg.appendChild(svgEl("line", {x1: x(start), x2: x(start), y1: 18, y2: height - 30, class: "base"}));
  steps.forEach((s, i) => {
    const y = top + i * row;
    const shown = s.c.label ?? (s.c.value === null || s.c.value === undefined ? null : formatNumber(s.c.value, 2));
    const name = shown === null ? s.c.feature : `${s.c.feature} = ${shown}`;
    svg.appendChild(svgEl("text", {x: labelW - 6, y: y + 15, "text-anchor": "end", class: "label"},
      name.length > 38 ? name.slice(0, 36) + "…" : name));
    const x0 = Math.min(x(s.from), x(s.to)), w = Math.max(Math.abs(x(s.to) - x(s.from)), 1);
    svg.appendChild(svgEl("rect", {x: x0, y: y + 3, width: w, height: row - 6, class: s.c.shap >= 0 ? "up" : "down"}));
    svg.appendChild(svgEl("text", {x: x0 + w + 4, y: y + 15, class: "value"},
      `${s.c.shap >= 0 ? "+" : ""}${formatNumber(s.c.shap)}`));
  });
  const end = steps[steps.length - 1].to;
  svg.appendChild(svgEl("line", {x1: x(end), x2: x(end), y1: 18, y2: height - 30, class: "end"}));
  svg.appendChild(svgEl("text", {x: x(end), y: height - 14, "text-anchor": "middle", class: "axis"},
    `base + these ${bars.length}: ${formatNumber(end)}`));
  box.appendChild(svg);
  $("shap-caption").textContent = `SHAP waterfall of the ${bars.length} largest contributions` +
    (scale ? ` (${scale} scale)` : "") + ": how each input moved this patient's prediction from the model's base value.";
}

function renderNomogram(nomogram) {
  const body = document.querySelector("#nomogram tbody");
  body.textContent = "";
  if (!nomogram || !nomogram.points) { $("nomogram-box").hidden = true; return; }
  const entries = Object.entries(nomogram.points);
  if (nomogram.total_points !== undefined) entries.push(["Total points", nomogram.total_points]);
  entries.forEach(([name, value]) => {
    const tr = document.createElement("tr");
    [name, formatNumber(value, 1)].forEach((t) => { const td = document.createElement("td"); td.textContent = t; tr.appendChild(td); });
    body.appendChild(tr);
  });
  $("nomogram-box").hidden = !entries.length;
}

function renderInputs(inputs) {
  const body = document.querySelector("#inputs tbody");
  body.textContent = "";
  const rows = state.fields.map((f) => [f.label + (f.unit ? ` (${f.unit})` : ""), inputs.variables[f.name]]);
  rows.push(["Image", `${inputs.image.filename}, ${inputs.image.cols} × ${inputs.image.rows} px`]);
  rows.push(["ROI", `${inputs.roi_source === "file" ? "mask file" : "drawn"}`]);
  rows.forEach(([name, value]) => {
    const tr = document.createElement("tr");
    [name, value === null || value === undefined ? "— (imputed)" : String(value)].forEach((t) => {
      const td = document.createElement("td");
      td.textContent = t;
      tr.appendChild(td);
    });
    body.appendChild(tr);
  });
}

function renderRoiUsed(mask) {
  const canvas = $("roi-used");
  canvas.width = mask.cols;
  canvas.height = mask.rows;
  const ctx = canvas.getContext("2d");
  if (state.preview) ctx.drawImage(state.preview, 0, 0);
  const img = new Image();
  img.onload = () => {
    const layer = document.createElement("canvas");
    layer.width = mask.cols;
    layer.height = mask.rows;
    const lctx = layer.getContext("2d");
    lctx.drawImage(img, 0, 0);
    const px = lctx.getImageData(0, 0, mask.cols, mask.rows);
    for (let i = 0; i < px.data.length; i += 4) {
      const on = px.data[i] > 0;
      px.data[i] = 0; px.data[i + 1] = 200; px.data[i + 2] = 255; px.data[i + 3] = on ? 110 : 0;
    }
    lctx.putImageData(px, 0, 0);
    ctx.drawImage(layer, 0, 0);
  };
  img.src = `data:image/png;base64,${mask.data}`;
}

function renderResult(answer) {
  const r = answer.result;
  const p = Number(r.probability);
  const out = $("probability");
  out.textContent = `${p.toFixed(4)} (${(100 * p).toFixed(1)}%)`;
  out.dataset.value = String(r.probability);
  $("risk-group").textContent = r.risk_group;
  $("risk-group").className = `group-${String(r.risk_group).toLowerCase().replace(/[^a-z]+/g, "-")}`;
  $("cutoff").textContent = formatNumber(r.cutoff, 3);
  $("model-name").textContent = r.model ? `Model: ${r.model}` : "";
  $("result-case").textContent = `· ${answer.inputs.case_id}`;
  renderWarnings(r.warnings);
  renderWaterfall(r.contributions, r.base_value, r.shap_output);
  $("gradcam-figure").hidden = !r.gradcam;
  if (r.gradcam) $("gradcam").src = r.gradcam;
  renderNomogram(r.nomogram);
  renderInputs(answer.inputs);
  renderRoiUsed(answer.mask);
  $("result-meta").textContent = `Image ${answer.inputs.image.filename} (${answer.inputs.image.cols} × ${answer.inputs.image.rows}), ` +
    `ROI ${answer.mask.pixels} pixels (${answer.inputs.roi_source}); bundle sha256 ${answer.bundle.sha256}; sonorad ${answer.sonorad_version}.`;
  $("result").hidden = false;
  $("result").scrollIntoView({behavior: "smooth", block: "start"});
}

function download() {
  if (!state.result) return;
  const blob = new Blob([JSON.stringify(state.result, null, 1)], {type: "application/json"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `sonorad_${state.result.inputs.case_id.replace(/[^A-Za-z0-9_.-]+/g, "_")}.json`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// ------------------------------------------------------------------------------------- wiring

async function login(event) {
  event.preventDefault();
  const answer = await api("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token: $("token-input").value})});
  if (!answer.ok) { $("login-error").textContent = answer.body.error; $("login-error").hidden = false; return; }
  $("login").hidden = true;
  $("calculator").hidden = false;
  loadSchema();
}

document.addEventListener("DOMContentLoaded", () => {
  const canvas = $("roi-canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("dblclick", onDoubleClick);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && state.current && state.current.type === "polygon") { e.preventDefault(); closePolygon(); }
    if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
  });
  $("image-input").addEventListener("change", (e) => e.target.files[0] && loadImage(e.target.files[0]));
  $("mask-input").addEventListener("change", (e) => {
    state.maskFile = e.target.files[0] || null;
    $("mask-clear").hidden = !state.maskFile;
    updateRoiInfo();
  });
  $("mask-clear").addEventListener("click", () => {
    state.maskFile = null;
    $("mask-input").value = "";
    $("mask-clear").hidden = true;
    updateRoiInfo();
  });
  $("brush-radius").addEventListener("input", () => { $("brush-radius-value").textContent = $("brush-radius").value; });
  $("close-polygon").addEventListener("click", closePolygon);
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => { state.shapes = []; state.current = null; redraw(); });
  $("case-form").addEventListener("submit", submit);
  $("download").addEventListener("click", download);
  $("print").addEventListener("click", () => window.print());
  $("login-form").addEventListener("submit", login);
  redraw();
  loadSchema();
});
