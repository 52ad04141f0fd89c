// sonorad risk calculator page: one patient at a time. Image upload, the form built from the model's
// variable schema, the prediction; the ROI canvas is in roi.js, the result panel in result.js.
// A result belongs to the inputs that made it: any change marks it stale until recalculated.
// With a segmenter (sonorad serve --segmenter), the Box tool asks /api/propose for an outline.
// No external scripts.
"use strict";

const state = {
  fields: [],          // form fields from /api/schema
  spacing: null,       // the bundle's pixel-spacing rule from /api/schema
  fileHasSpacing: true, // whether the loaded image records its pixel size
  imageFile: null,     // the File the user chose (sent again with the prediction)
  maskFile: null,
  preview: null,       // HTMLImageElement of the gray image as sonorad reads it
  rows: 0, cols: 0,
  result: null,        // last JSON answer of /api/predict
  version: 0,          // counts changes of the inputs: a result made from an older version is stale
  imageRequest: 0,     // counts image loads: an answer for an image no longer chosen is dropped
  patient: 0,          // counts patients: an answer for an earlier patient is dropped
  segmenter: null,     // {available, description} of the server's segmenter
  proposeRequest: 0,   // counts boxes: an answer for an earlier box is dropped
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
  if (response.status === 401 && state.fields.length && !/\/api\/log(in|out)$/.test(path)) {
    $("login").hidden = false;  // the session ended (expired or logged out elsewhere): sign in again
    body = {error: "Your session has ended.", fix: "sign in again with the access token above, then recalculate"};
  }
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
  if (field.input === "number" && field.unit) {
    const group = document.createElement("span");
    group.className = "with-unit";
    const unit = document.createElement("span");
    unit.className = "unit";
    unit.textContent = field.unit;
    group.append(control, unit);
    wrap.appendChild(group);
  } else {
    wrap.appendChild(control);
  }
  const hint = [];
  const unit = field.unit ? ` ${field.unit}` : "";
  if (field.range) hint.push(`training range ${field.range[0]} – ${field.range[1]}${unit}`);
  if (field.plausible_range) hint.push(`accepted ${field.plausible_range[0]} – ${field.plausible_range[1]}${unit}`);
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
  state.segmenter = answer.body.segmenter || null;
  if (!state.segmenter) {  // a server that does not list it in the schema: ask the propose route itself
    const info = await api("/api/propose");
    state.segmenter = info.ok ? info.body : {available: false};
  }
  showBoxTool();
  renderForm(state.fields);
  showPixelSize();
  $("research-use").textContent = answer.body.research_use;
  const b = answer.body.bundle;
  $("bundle-info").textContent = `Model bundle ${b.id ? `${b.id}, ` : ""}sha256 ${b.sha256}`;
  // Whether the server asks for a token (then a logout is offered): the same request without the cookie.
  const bare = await fetch("/api/schema", {credentials: "omit"}).catch(() => null);
  $("logout").hidden = !(bare && bare.status === 401);
}

// ---------------------------------------------------------------------------------- the image

async function loadImage(file) {
  const previous = Boolean(state.imageFile || state.result);
  clearPatient({keepImageInput: true});
  state.imageFile = file;
  const request = ++state.imageRequest;
  $("image-info").textContent = "Reading the image…";
  const data = new FormData();
  data.append("image", file, file.name);
  const answer = await api("/api/image", {method: "POST", body: data});
  if (request !== state.imageRequest) return;  // another image (or patient) came since
  if (!answer.ok) {
    state.imageFile = null;
    $("image-info").textContent = "No image loaded.";
    showError(answer.body.error, answer.body.fix);
    return;
  }
  const info = answer.body;
  const img = new Image();
  img.onload = () => {
    if (request !== state.imageRequest) return;
    state.preview = img;
    state.rows = info.rows;
    state.cols = info.cols;
    Roi.setImage(img, info.rows, info.cols);
    $("roi-canvas").dataset.ready = "1";
  };
  img.src = info.preview;
  const spacing = info.spacing_source === "none" ? "no pixel spacing in the file"
    : `pixel ${info.spacing_mm.map((v) => v.toFixed(3)).join(" × ")} mm`;
  $("image-info").textContent = `${file.name}: ${info.format.toUpperCase()}, ${info.cols} × ${info.rows} pixels, ${spacing}` +
    (previous ? ". New image: the previous patient's mask, outline, case id, variables and result were cleared." : "");
  state.fileHasSpacing = info.spacing_source !== "none";
  showPixelSize();
}

// Forget everything of the current patient: image (unless a new one is being loaded), mask, outline,
// case id, variables, pixel size, result and any error.
function clearPatient({keepImageInput = false} = {}) {
  clearError();
  state.patient += 1;
  state.imageRequest += 1;
  state.imageFile = null;
  state.preview = null;
  state.fileHasSpacing = true;
  if (!keepImageInput) $("image-input").value = "";
  $("roi-canvas").dataset.ready = "";
  Roi.reset();
  state.proposeRequest += 1;
  setProposeInfo("");
  setMaskFile(null);
  $("case-id").value = "";
  $("pixel-size").value = "";
  state.fields.forEach((f) => { const c = $(`var-${f.name}`); if (c) c.value = ""; });
  $("image-info").textContent = "No image loaded.";
  showPixelSize();
  dropResult();
  state.version += 1;
}

function dropResult() {
  state.result = null;
  $("result").hidden = true;
  setStale(false);
}

function setStale(stale) {
  $("result").classList.toggle("stale", stale);
  $("stale-note").hidden = !stale;
  $("download").disabled = stale;
  $("print").disabled = stale;
}

// Any change of an input: the shown result no longer belongs to what is on screen.
function inputsChanged() {
  state.version += 1;
  if (state.result) setStale(true);
}

function updateRoiInfo() {
  const n = Roi.count();
  let text = n ? `${n} shape${n > 1 ? "s" : ""} drawn.` : "No ROI drawn.";
  const origin = Roi.origin();
  if (origin === "proposed") text = "The proposed outline, unchanged.";
  if (origin === "edited") text = `The proposed outline, edited (${n - 1} change${n > 2 ? "s" : ""}).`;
  const open = Roi.openPoints();
  if (open) text += ` Polygon in progress: ${open} points.`;
  if (state.maskFile) text = `The mask file ${state.maskFile.name} will be used (the drawing is ignored).`;
  $("roi-info").textContent = text;
}

// The mask file, previewed as an overlay where the server reads it (the same reader as the image).
async function setMaskFile(file) {
  state.maskFile = file;
  $("mask-clear").hidden = !file;
  if (!file) $("mask-input").value = "";
  Roi.setMask(null);
  updateRoiInfo();
  if (!file || !state.preview) return;
  const data = new FormData();
  data.append("image", file, file.name);
  const answer = await api("/api/image", {method: "POST", body: data});
  if (state.maskFile !== file) return;
  if (!answer.ok) { showError(`The mask file cannot be read: ${answer.body.error}`, answer.body.fix); return; }
  const img = new Image();
  img.onload = () => {
    if (state.maskFile !== file) return;
    if (!Roi.setMask(img)) {
      showError(`The mask file is ${img.naturalWidth} × ${img.naturalHeight} pixels but the image is ` +
        `${state.cols} × ${state.rows}.`, "upload the mask of this image, or draw the outline");
    }
  };
  img.src = answer.body.preview;
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

// ---------------------------------------------------------------------------- proposed outline

function showBoxTool() {
  const on = Boolean(state.segmenter && state.segmenter.available);
  $("tool-box").hidden = !on;
  $("box-hint").hidden = !on;
  if (on) $("box-hint").textContent = "Box: drag a box around the lesion to get a proposed outline (green); correct " +
    `it with the brush or eraser, then calculate. Segmenter: ${state.segmenter.description || "not described"}.`;
  if (!on && document.querySelector("input[name=tool]:checked").value === "box") {
    document.querySelector("input[name=tool][value=polygon]").checked = true;
  }
}

function setProposeInfo(text, warn) {
  const box = $("propose-info");
  box.textContent = text || "";
  box.hidden = !text;
  box.classList.toggle("warn", Boolean(warn));
}

// A box dragged on the image: the server proposes the lesion's outline inside it.
async function proposeBox(box) {
  clearError();
  if (!state.imageFile) return;
  const request = ++state.proposeRequest;
  const patient = state.patient;
  setProposeInfo("Proposing the outline…");
  const data = new FormData();
  data.append("image", state.imageFile, state.imageFile.name);
  data.append("box", JSON.stringify(box));
  let answer;
  try {
    answer = await api("/api/propose", {method: "POST", body: data});
  } catch (e) {
    answer = {ok: false, body: {error: `The request failed: ${e}`}};
  }
  if (request !== state.proposeRequest || patient !== state.patient) return;  // another box or patient since
  if (!answer.ok) {
    Roi.clearBox();
    setProposeInfo("");
    showError(answer.body.error, answer.body.fix);
    return;
  }
  const p = answer.body;
  Roi.setProposal(p.polygon);
  const flagged = p.flags && p.flags.length;
  setProposeInfo(`Proposed outline (green), confidence ${Number(p.confidence).toFixed(2)}. ${p.message}`, flagged);
}

// ------------------------------------------------------------------------------------- predict

async function submit(event) {
  event.preventDefault();
  clearError();
  if (!state.imageFile) { showError("Choose an ultrasound image first."); return; }
  if (Roi.openPoints()) Roi.closePolygon();
  const version = state.version;
  const patient = state.patient;
  const data = new FormData();
  data.append("image", state.imageFile, state.imageFile.name);
  if (state.maskFile) data.append("mask", state.maskFile, state.maskFile.name);
  else if (Roi.count()) {
    data.append("roi", Roi.json());
    data.append("roi_origin", Roi.origin());
  }
  data.append("variables", JSON.stringify(formValues()));
  data.append("case_id", $("case-id").value || "case");
  if (!$("pixel-size-field").hidden && $("pixel-size").value.trim()) {
    data.append("pixel_size_mm", $("pixel-size").value.trim());
  }
  $("submit").disabled = true;
  $("busy").hidden = false;
  try {
    const answer = await api("/api/predict", {method: "POST", body: data});
    if (patient !== state.patient) return;  // the answer for a patient no longer on the page
    if (!answer.ok) {
      dropResult();  // no result of other inputs stays under the error
      showError(answer.body.error, answer.body.fix);
      const wrap = document.querySelector(`.field[data-name="${CSS.escape(answer.body.field || "")}"]`);
      if (wrap) {
        wrap.classList.add("invalid");
        wrap.querySelector(".field-error").textContent = answer.body.error;
      }
      return;
    }
    state.result = answer.body;
    Result.render(answer.body, state.fields, state.preview);
    setStale(version !== state.version);  // inputs changed while it was computed
    $("result").hidden = false;
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    $("result").scrollIntoView({behavior: still ? "auto" : "smooth", block: "start"});
  } catch (e) {
    if (patient !== state.patient) return;
    dropResult();
    showError(`The request failed: ${e}`);
  } finally {
    $("submit").disabled = false;
    $("busy").hidden = true;
  }
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
  $("token-input").value = "";
  $("login-error").hidden = true;
  $("login").hidden = true;
  $("calculator").hidden = false;
  if (!state.fields.length) loadSchema();  // after a session ended mid-case the form keeps its values
  else $("logout").hidden = false;
}

async function logout() {
  const answer = await api("/api/logout", {method: "POST"});
  if (!answer.ok) { showError(`Logging out failed: ${answer.body.error}`, answer.body.fix); return; }
  clearPatient();
  state.fields = [];
  $("fields").textContent = "";
  $("logout").hidden = true;
  $("calculator").hidden = true;
  $("login").hidden = false;
}

// Room the canvas leaves in the viewport for what must stay visible with it: the panel heading and,
// when the tools sit above and below the canvas (narrow screens), the tools and the hints.
function canvasReserve() {
  const side = document.querySelector(".roi-side");
  const beside = side.offsetTop < $("canvas-wrap").offsetTop + 10;
  const head = 70;
  return beside ? head : head + side.offsetHeight;
}

document.addEventListener("DOMContentLoaded", () => {
  Roi.init($("roi-canvas"), $("canvas-wrap"), {
    tool: () => document.querySelector("input[name=tool]:checked").value,
    radius: () => Number($("brush-radius").value),
    reserve: canvasReserve,
    onChange: inputsChanged,
    onInfo: updateRoiInfo,
    onBox: proposeBox,
  });
  $("image-input").addEventListener("change", (e) => e.target.files[0] && loadImage(e.target.files[0]));
  $("new-patient").addEventListener("click", () => clearPatient());
  $("mask-input").addEventListener("change", (e) => { setMaskFile(e.target.files[0] || null); inputsChanged(); });
  $("mask-clear").addEventListener("click", () => { setMaskFile(null); inputsChanged(); });
  ["fields", "case-id", "pixel-size"].forEach((id) => {
    $(id).addEventListener("input", inputsChanged);
    $(id).addEventListener("change", inputsChanged);
  });
  $("brush-radius").addEventListener("input", () => { $("brush-radius-value").textContent = $("brush-radius").value; });
  $("close-polygon").addEventListener("click", () => Roi.closePolygon());
  $("undo").addEventListener("click", () => Roi.undo());
  $("clear").addEventListener("click", () => Roi.clearShapes());
  $("zoom-in").addEventListener("click", () => Roi.zoomIn());
  $("zoom-out").addEventListener("click", () => Roi.zoomOut());
  $("zoom-fit").addEventListener("click", () => Roi.fit());
  $("case-form").addEventListener("submit", submit);
  $("download").addEventListener("click", download);
  $("print").addEventListener("click", () => window.print());
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  loadSchema();
});
