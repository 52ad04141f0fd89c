// sonorad risk calculator page: the ROI canvas. Polygon, brush, eraser and pan tools, undo, zoom
// (buttons, wheel, pinch) and pan (pan tool, space+drag, middle button), the preview of an uploaded
// mask file, and the keyboard (the canvas is focusable; shortcuts act only while it has focus).
// With a segmenter, the Box tool: a dragged box is handed to the page (opts.onBox), which asks the
// server for a proposed outline and puts it here as a polygon (setProposal) that the brush and the
// eraser can edit. origin() says how the ROI came about: drawn, proposed (unchanged) or edited.
// Shapes are kept in image pixel coordinates; the view maps them to the screen.
"use strict";

const Roi = (() => {
  const s = {
    canvas: null, wrap: null, opts: null,
    image: null, rows: 0, cols: 0,
    shapes: [],          // finished shapes, image pixel coordinates
    current: null,       // polygon or stroke being drawn
    mask: null,          // canvas (cols x rows) of the mask file overlay, or null
    layer: null,         // offscreen canvas the drawing is painted on (so the eraser can cut it)
    fit: 1, zoom: 1, ox: 0, oy: 0,  // screen (CSS px) = image px * fit * zoom + (ox, oy)
    cursor: null,        // [x, y] image px: where Enter adds a point
    keyboard: false,     // the cursor was last moved by the keyboard (then it is drawn)
    pointers: new Map(), pinch: null, pan: null, space: false, lastAdd: 0,
    box: null,           // {start, end} image px: the box being dragged, or waiting for its proposal
  };
  const DRAWN = "rgb(255, 196, 0)", PROPOSED = "rgb(60, 220, 120)";
  const MAX_ZOOM = 32;

  const k = () => s.fit * s.zoom;
  const cssSize = () => [parseFloat(s.canvas.style.width) || s.canvas.width, parseFloat(s.canvas.style.height) || s.canvas.height];
  const changed = () => { s.opts.onChange(); };

  function screenPoint(event) {
    const rect = s.canvas.getBoundingClientRect();
    const [w, h] = cssSize();
    return [(event.clientX - rect.left) * w / rect.width, (event.clientY - rect.top) * h / rect.height];
  }
  function toImage([sx, sy]) { return [(sx - s.ox) / k(), (sy - s.oy) / k()]; }
  function toScreen([x, y]) { return [x * k() + s.ox, y * k() + s.oy]; }

  // ------------------------------------------------------------------------------------ view

  function clampPan() {
    const [w, h] = cssSize();
    const cw = s.cols * k(), ch = s.rows * k();
    s.ox = cw <= w ? (w - cw) / 2 : Math.min(0, Math.max(w - cw, s.ox));
    s.oy = ch <= h ? (h - ch) / 2 : Math.min(0, Math.max(h - ch, s.oy));
  }

  // The canvas takes the image's aspect, as large as the room beside (or between) the tools and the
  // hints allows, so that at 1366x768 or on a tablet they stay on screen with it.
  function layout() {
    const c = s.canvas;
    const availW = Math.max(120, s.wrap.clientWidth);
    const availH = Math.max(180, window.innerHeight - s.opts.reserve());
    const dpr = window.devicePixelRatio || 1;
    let w = availW, h = Math.min(availH, Math.round(availW * 0.4));
    if (s.image) {
      s.fit = Math.min(availW / s.cols, availH / s.rows);
      w = Math.max(1, Math.floor(s.cols * s.fit));
      h = Math.max(1, Math.floor(s.rows * s.fit));
    }
    c.style.width = `${w}px`;
    c.style.height = `${h}px`;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    clampPan();
    redraw();
  }

  function zoomAt(factor, sx, sy) {
    if (!s.image) return;
    const [w, h] = cssSize();
    if (sx === undefined) { sx = w / 2; sy = h / 2; }
    const [ix, iy] = toImage([sx, sy]);
    s.zoom = Math.min(MAX_ZOOM, Math.max(1, s.zoom * factor));
    s.ox = sx - ix * k();
    s.oy = sy - iy * k();
    clampPan();
    redraw();
  }

  function fitView() { s.zoom = 1; s.ox = s.oy = 0; clampPan(); redraw(); }

  // ---------------------------------------------------------------------------------- drawing

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
    const c = s.canvas;
    const ctx = c.getContext("2d");
    const dpr = c.width / cssSize()[0];
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalCompositeOperation = "source-over";
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#222";
    ctx.fillRect(0, 0, c.width, c.height);
    if (!s.image) {
      ctx.fillStyle = "#bbb";
      ctx.font = `${Math.round(15 * dpr)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.fillText("Choose the ultrasound image above to outline the lesion here.", c.width / 2, c.height / 2);
    } else {
      ctx.setTransform(dpr * k(), 0, 0, dpr * k(), dpr * s.ox, dpr * s.oy);
      ctx.imageSmoothingEnabled = k() < 2;
      ctx.drawImage(s.image, 0, 0);
      if (s.mask) { ctx.globalAlpha = 0.5; ctx.drawImage(s.mask, 0, 0); ctx.globalAlpha = 1; }
      if (!s.layer || s.layer.width !== s.cols || s.layer.height !== s.rows) {
        s.layer = document.createElement("canvas");
        s.layer.width = s.cols;
        s.layer.height = s.rows;
      }
      const lctx = s.layer.getContext("2d");
      lctx.globalCompositeOperation = "source-over";
      lctx.clearRect(0, 0, s.cols, s.rows);
      const open = s.current && s.current.type !== "polygon" ? [s.current] : [];
      s.shapes.concat(open).forEach((shape) => {
        lctx.fillStyle = lctx.strokeStyle = shape.proposed ? PROPOSED : DRAWN;
        paintShape(lctx, shape);
      });
      ctx.globalAlpha = s.mask ? 0.2 : 0.45;  // with a mask file the drawing is not used
      ctx.drawImage(s.layer, 0, 0);
      ctx.globalAlpha = 1;
      const px = 1 / k();  // one screen pixel in image pixels
      s.shapes.filter((shape) => shape.proposed).forEach((shape) => {  // the proposed outline, in its colour
        ctx.strokeStyle = PROPOSED;
        ctx.lineWidth = 2 * px;
        ctx.beginPath();
        shape.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
        ctx.stroke();
      });
      if (s.box) {
        const [[x0, y0], [x1, y1]] = [s.box.start, s.box.end];
        ctx.setLineDash([6 * px, 4 * px]);
        ctx.strokeStyle = PROPOSED;
        ctx.lineWidth = 2 * px;
        ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
        ctx.setLineDash([]);
      }
      if (s.current && s.current.type === "polygon") {
        ctx.strokeStyle = "rgb(255, 196, 0)";
        ctx.fillStyle = "rgb(255, 64, 64)";
        ctx.lineWidth = 2 * px;
        ctx.beginPath();
        s.current.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.stroke();
        s.current.points.forEach(([x, y]) => ctx.fillRect(x - 3 * px, y - 3 * px, 6 * px, 6 * px));
      }
      if (s.keyboard && s.cursor && document.activeElement === c) {
        const [x, y] = s.cursor;
        const pts = s.current && s.current.type === "polygon" ? s.current.points : [];
        if (pts.length) {  // where Enter would put the next edge
          ctx.setLineDash([4 * px, 4 * px]);
          ctx.strokeStyle = "rgb(255, 196, 0)";
          ctx.lineWidth = 1.5 * px;
          ctx.beginPath();
          ctx.moveTo(...pts[pts.length - 1]);
          ctx.lineTo(x, y);
          ctx.stroke();
          ctx.setLineDash([]);
        }
        ctx.strokeStyle = "rgb(0, 230, 255)";
        ctx.lineWidth = 2 * px;
        ctx.beginPath();
        ctx.moveTo(x - 10 * px, y); ctx.lineTo(x + 10 * px, y);
        ctx.moveTo(x, y - 10 * px); ctx.lineTo(x, y + 10 * px);
        ctx.stroke();
      }
    }
    s.canvas.dataset.zoom = String(s.zoom);
    s.canvas.dataset.origin = origin();
    s.canvas.dataset.mask = s.mask ? "1" : "";
    s.canvas.dataset.offset = `${s.ox.toFixed(1)},${s.oy.toFixed(1)}`;
    s.opts.onInfo();
  }

  // ------------------------------------------------------------------------------------ editing

  function addPoint(point) {
    const tool = s.opts.tool();
    if (tool === "polygon") {
      if (!s.current || s.current.type !== "polygon") s.current = {type: "polygon", points: []};
      const pts = s.current.points;
      if (pts.length >= 3) {
        const [x0, y0] = pts[0];
        if (Math.hypot(point[0] - x0, point[1] - y0) <= 8 / k()) { closePolygon(); return; }
      }
      pts.push(point);
      s.lastAdd = performance.now();
    } else {
      s.shapes.push({type: tool, radius: s.opts.radius(), points: [point]});
    }
    changed();
    redraw();
  }

  function closePolygon() {
    const poly = s.current;
    if (!poly || poly.type !== "polygon") return;
    if (poly.points.length >= 3) s.shapes.push(poly);
    s.current = null;
    changed();
    redraw();
  }

  function cancelOpen() {
    if (!s.current) return;
    s.current = null;
    changed();
    redraw();
  }

  function undo() {
    if (s.current && s.current.type === "polygon" && s.current.points.length) {
      s.current.points.pop();
      if (!s.current.points.length) s.current = null;
    } else {
      s.current = null;
      if (!s.shapes.length) return;
      s.shapes.pop();
    }
    changed();
    redraw();
  }

  function clearShapes() {
    const had = s.shapes.length || s.current;
    s.shapes = [];
    s.current = null;
    if (had) changed();
    redraw();
  }

  // ----------------------------------------------------------------------------- pointer input

  function panning(event) { return s.opts.tool() === "pan" || s.space || event.button === 1; }

  function onPointerDown(event) {
    if (!s.image) return;
    s.canvas.focus({preventScroll: true});
    s.pointers.set(event.pointerId, screenPoint(event));
    s.canvas.setPointerCapture(event.pointerId);
    if (s.pointers.size === 2) {  // a second finger: pinch-zoom, and drop what the first one began
      if (s.current && s.current.type !== "polygon") s.current = null;
      else if (s.current && performance.now() - s.lastAdd < 600) undo();
      const [a, b] = [...s.pointers.values()];
      s.pinch = {dist: Math.hypot(a[0] - b[0], a[1] - b[1]), zoom: s.zoom, mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]};
      s.pan = null;
      redraw();
      return;
    }
    if (s.pointers.size > 2 || (event.button !== 0 && event.button !== 1)) return;
    const sp = screenPoint(event);
    if (panning(event)) {
      event.preventDefault();
      s.pan = {start: sp, ox: s.ox, oy: s.oy};
      return;
    }
    const point = toImage(sp);
    s.cursor = point;
    s.keyboard = false;
    if (s.opts.tool() === "box") { s.box = {start: point, end: point, dragging: true}; redraw(); return; }
    if (s.opts.tool() === "polygon") { addPoint(point); return; }
    s.current = {type: s.opts.tool(), radius: s.opts.radius(), points: [point]};
    changed();
    redraw();
  }

  function onPointerMove(event) {
    if (!s.image) return;
    const sp = screenPoint(event);
    if (s.pointers.has(event.pointerId)) s.pointers.set(event.pointerId, sp);
    if (s.pinch && s.pointers.size === 2) {
      const [a, b] = [...s.pointers.values()];
      const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      s.ox += mid[0] - s.pinch.mid[0];
      s.oy += mid[1] - s.pinch.mid[1];
      s.pinch.mid = mid;
      const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
      zoomAt(s.pinch.zoom * dist / Math.max(1, s.pinch.dist) / s.zoom, mid[0], mid[1]);
      return;
    }
    if (s.pan) {
      s.ox = s.pan.ox + sp[0] - s.pan.start[0];
      s.oy = s.pan.oy + sp[1] - s.pan.start[1];
      clampPan();
      redraw();
      return;
    }
    s.cursor = toImage(sp);
    s.keyboard = false;
    if (s.box && s.box.dragging) { s.box.end = s.cursor; redraw(); return; }
    if (!s.current || s.current.type === "polygon") return;
    s.current.points.push(s.cursor);
    redraw();
  }

  function onPointerUp(event) {
    s.pointers.delete(event.pointerId);
    if (s.pointers.size < 2) s.pinch = null;
    if (s.pan) { s.pan = null; return; }
    if (s.box && s.box.dragging) { finishBox(); return; }
    if (!s.current || s.current.type === "polygon") return;
    s.shapes.push(s.current);
    s.current = null;
    changed();
    redraw();
  }

  // The dragged box, clipped to the image, goes to the page; it stays drawn until the proposal comes.
  function finishBox() {
    const clip = (v, hi) => Math.min(hi, Math.max(0, v));
    const [[ax, ay], [bx, by]] = [s.box.start, s.box.end];
    const box = [clip(Math.min(ax, bx), s.cols), clip(Math.min(ay, by), s.rows),
                 clip(Math.max(ax, bx), s.cols), clip(Math.max(ay, by), s.rows)].map((v) => Math.round(v * 10) / 10);
    s.box.dragging = false;
    redraw();
    s.opts.onBox(box);
  }

  // The proposed outline replaces what was drawn; later brush, eraser or polygon shapes edit it.
  function setProposal(points) {
    s.box = null;
    s.current = null;
    s.shapes = points && points.length >= 3 ? [{type: "polygon", points: points.map((p) => p.slice()), proposed: true}] : [];
    changed();
    redraw();
  }

  function clearBox() { s.box = null; redraw(); }

  // How the ROI came about: only the unchanged proposal -> proposed; the proposal and more -> edited.
  function origin() {
    if (!s.shapes.some((shape) => shape.proposed)) return "drawn";
    return s.shapes.length === 1 && !s.current ? "proposed" : "edited";
  }

  function onDoubleClick(event) {
    event.preventDefault();
    const poly = s.current;
    if (!poly || poly.type !== "polygon") return;
    // The two clicks of a double-click each added a point at the same place: keep one.
    while (poly.points.length > 3) {
      const [a, b] = poly.points.slice(-2);
      if (Math.hypot(a[0] - b[0], a[1] - b[1]) > 2 / k()) break;
      poly.points.pop();
    }
    closePolygon();
  }

  function onWheel(event) {
    if (!s.image) return;
    event.preventDefault();
    const [sx, sy] = screenPoint(event);
    zoomAt(Math.exp(-event.deltaY * (event.ctrlKey ? 0.01 : 0.0015)), sx, sy);
  }

  // ---------------------------------------------------------------------------- keyboard input

  function keepCursorInView() {
    const [w, h] = cssSize();
    const [sx, sy] = toScreen(s.cursor);
    if (sx < 0 || sy < 0 || sx > w || sy > h) {
      s.ox += w / 2 - sx;
      s.oy += h / 2 - sy;
      clampPan();
    }
  }

  const ARROWS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};

  function onKeyDown(event) {
    if (!s.image) return;
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (ARROWS[key]) {
      event.preventDefault();
      if (!s.cursor) s.cursor = [s.cols / 2, s.rows / 2];
      const step = (event.shiftKey ? 20 : 4) / k();  // 4 (Shift: 20) screen pixels
      const [dx, dy] = ARROWS[key];
      s.cursor = [Math.min(s.cols, Math.max(0, s.cursor[0] + dx * step)),
                  Math.min(s.rows, Math.max(0, s.cursor[1] + dy * step))];
      s.keyboard = true;
      keepCursorInView();
      redraw();
    } else if (key === "Enter") {
      event.preventDefault();
      if (s.opts.tool() === "pan" || s.opts.tool() === "box") return;
      if (!s.cursor) { s.cursor = [s.cols / 2, s.rows / 2]; s.keyboard = true; redraw(); return; }
      addPoint(s.cursor.slice());
    } else if (key === "Escape") {
      if (!s.current) return;
      event.preventDefault();
      if (s.current.type === "polygon" && s.current.points.length >= 3) closePolygon();
      else cancelOpen();
    } else if (key === "+" || key === "=") {
      event.preventDefault();
      const c = s.cursor && s.keyboard ? toScreen(s.cursor) : [];
      zoomAt(1.25, c[0], c[1]);
    } else if (key === "-" || key === "_") {
      event.preventDefault();
      const c = s.cursor && s.keyboard ? toScreen(s.cursor) : [];
      zoomAt(0.8, c[0], c[1]);
    } else if (key === "0") {
      event.preventDefault();
      fitView();
    } else if (key === " ") {
      event.preventDefault();  // space+drag pans; no page scroll
      s.space = true;
      s.canvas.classList.add("panning");
    }
  }

  function onKeyUp(event) {
    if (event.key === " ") { s.space = false; s.canvas.classList.remove("panning"); }
  }

  // --------------------------------------------------------------------------------- the API

  function init(canvas, wrap, opts) {
    s.canvas = canvas;
    s.wrap = wrap;
    s.opts = opts;
    canvas.addEventListener("pointerdown", onPointerDown);
    canvas.addEventListener("pointermove", onPointerMove);
    canvas.addEventListener("pointerup", onPointerUp);
    canvas.addEventListener("pointercancel", onPointerUp);
    canvas.addEventListener("dblclick", onDoubleClick);
    canvas.addEventListener("wheel", onWheel, {passive: false});
    canvas.addEventListener("keydown", onKeyDown);
    canvas.addEventListener("keyup", onKeyUp);
    canvas.addEventListener("focus", redraw);
    canvas.addEventListener("blur", () => { s.space = false; canvas.classList.remove("panning"); redraw(); });
    let pending = null;
    window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(layout, 50); });
    layout();
  }

  function setImage(img, rows, cols) {
    s.image = img;
    s.rows = rows;
    s.cols = cols;
    s.shapes = [];
    s.current = null;
    s.box = null;
    s.mask = null;
    s.cursor = null;
    s.zoom = 1;
    s.ox = s.oy = 0;
    layout();
  }

  // A mask image (cols x rows; non-zero in any channel = lesion, as the server reads a mask) as a
  // canvas: lesion pixels in colour [r, g, b] with opacity alpha (0-255), the rest transparent.
  function tintMask(img, cols, rows, [r, g, b], alpha) {
    const layer = document.createElement("canvas");
    layer.width = cols;
    layer.height = rows;
    const lctx = layer.getContext("2d");
    lctx.drawImage(img, 0, 0);
    const px = lctx.getImageData(0, 0, cols, rows);
    for (let i = 0; i < px.data.length; i += 4) {
      const on = px.data[i] > 0 || px.data[i + 1] > 0 || px.data[i + 2] > 0;
      px.data[i] = r; px.data[i + 1] = g; px.data[i + 2] = b; px.data[i + 3] = on ? alpha : 0;
    }
    lctx.putImageData(px, 0, 0);
    return layer;
  }

  // Overlay of a mask file; false when its size differs from the image's.
  function setMask(img) {
    if (!img) { s.mask = null; redraw(); return true; }
    if (!s.image || img.naturalWidth !== s.cols || img.naturalHeight !== s.rows) { s.mask = null; redraw(); return false; }
    s.mask = tintMask(img, s.cols, s.rows, [0, 220, 255], 255);
    redraw();
    return true;
  }

  function json() {
    const round = (v) => Math.round(v * 100) / 100;
    return JSON.stringify({shapes: s.shapes.map((shape) => {  // the proposal travels as the polygon it is
      const out = {type: shape.type, points: shape.points.map(([x, y]) => [round(x), round(y)])};
      if (shape.type !== "polygon") out.radius = shape.radius;
      return out;
    })});
  }

  return {
    init, setImage, setMask, tintMask, layout, redraw, undo, clearShapes, closePolygon, json, setProposal, clearBox, origin,
    zoomIn: () => zoomAt(1.25), zoomOut: () => zoomAt(0.8), fit: fitView,
    reset: () => { s.image = null; s.mask = null; s.shapes = []; s.current = null; s.box = null; s.cursor = null; s.zoom = 1; layout(); },
    count: () => s.shapes.length,
    openPoints: () => (s.current && s.current.type === "polygon" ? s.current.points.length : 0),
    hasMask: () => Boolean(s.mask),
    image: () => s.image,
  };
})();
