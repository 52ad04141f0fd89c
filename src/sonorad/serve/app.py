"""The calculator as an ASGI application (FastAPI): one page, its static files, a JSON API.

Routes
------
``GET /``                 the calculator page (``static/index.html``)
``GET /model-card``       the model card, with the research-use statement
``GET /api/schema``       the form fields built from the bundle's variable schema, bundle identity, limits
``GET /api/card``         the model card as JSON
``POST /api/image``       multipart ``image``: the image as sonorad reads it (size, spacing, gray preview)
``POST /api/predict``     multipart ``image``, ``mask`` file *or* ``roi`` JSON, ``variables`` JSON,
                          optional ``case_id``, ``frame`` and ``pixel_size_mm`` (the pixel size of a
                          PNG / JPEG / BMP, required when the bundle resamples every image)
                          -> probability, risk group, explanation
``POST /api/login``       ``{"token": T}`` -> sets the access cookie (when the server has a token)
``GET /healthz``          liveness

Every refusal is JSON ``{"error", "field", "fix"}`` with a 4xx status; an unexpected failure is a 500
with a generic message (the traceback goes to the server log only).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import io
import json
import re
import threading
import uuid
from importlib import resources
from pathlib import Path

import numpy as np
# At module level: FastAPI resolves the endpoint annotations in this module's namespace.
from fastapi import File, Form, UploadFile

from sonorad.errors import CaseError, SonoradError
from sonorad.serve.form import check_values, form_fields, parse_values
from sonorad.serve.guard import COOKIE, Guard
from sonorad.serve.roi import parse_roi, rasterize_roi
from sonorad.serve.uploads import (
    PIXEL_SIZE_FIELD,
    UploadError,
    UploadLimits,
    read_uploaded_image,
    read_uploaded_mask,
    with_pixel_size,
)

__all__ = ["create_app", "decode_mask", "encode_mask", "png_data_url"]

STATIC = resources.files("sonorad.serve") / "static"
RESEARCH_USE = ("Research use only. This calculator is not a medical device and has not been cleared for "
                "clinical decisions; its output supports research on the model described in the model card.")


# ----------------------------------------------------------------------------------- encoding


def png_data_url(array: np.ndarray) -> str:
    """A ``data:image/png;base64`` URL of a 2D gray or (rows, cols, 3|4) colour uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def encode_mask(mask: np.ndarray) -> dict:
    """The mask as it went into the model: 1-bit PNG, base64, with its size and pixel count."""
    return {"rows": int(mask.shape[0]), "cols": int(mask.shape[1]), "pixels": int(mask.sum()),
            "encoding": "png-base64", "data": png_data_url(mask.astype(np.uint8) * 255).split(",", 1)[1]}


def decode_mask(encoded: dict) -> np.ndarray:
    """Inverse of :func:`encode_mask`: the boolean mask from a result JSON's ``mask`` entry."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(encoded["data"]))) as im:
        return np.asarray(im.convert("L")) > 0


def _display_gray(pixels: np.ndarray) -> np.ndarray:
    """8-bit view of an image for the page: 8-bit data as is, anything else stretched min..max."""
    lo, hi = float(np.min(pixels)), float(np.max(pixels))
    if lo >= 0 and hi <= 255:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.rint((pixels - lo) * scale), 0, 255).astype(np.uint8)


def _jsonable(value):
    """Result values as JSON: arrays of images become PNG data URLs, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.ndim >= 2 and min(value.shape[:2]) > 1 and value.dtype == np.uint8:
            return png_data_url(value)
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------------ errors


def _error_response(status: int, message: str, field=None, fix: str = ""):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "field": field, "fix": fix}, status_code=status)


def _install_error_handlers(app):
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(UploadError)
    async def _upload(request, exc: UploadError):
        return _error_response(exc.status, exc.message, exc.field, exc.fix)

    @app.exception_handler(CaseError)
    async def _case(request, exc: CaseError):
        return _error_response(422, exc.problem.message, exc.problem.column, exc.problem.fix)

    @app.exception_handler(SonoradError)
    async def _sonorad(request, exc: SonoradError):
        return _error_response(422, str(exc), getattr(exc, "field", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "form")]
        field = loc[0] if loc else None
        what = first.get("msg", "invalid request")
        return _error_response(422, f"{field}: {what}" if field else what, field,
                               "see the API description in docs/serve.md")

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return _error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        # Starlette re-raises after this response is sent, so uvicorn logs the traceback server-side.
        return _error_response(500, "the server failed on this request; the details are in the server log")


# ---------------------------------------------------------------------------------- the app


class _Keeper:
    """Where a request's files go with ``--keep DIR``: DIR/<UTC time>-<random>/ (never a client name)."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None

    def folder(self) -> Path | None:
        if self.root is None:
            return None
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
        folder = self.root / f"{stamp}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True, exist_ok=False)
        return folder


def _clean_text(text: str | None, default: str, limit: int) -> str:
    """A client-given name (case id, file name) as printable text of bounded length, for echoing only."""
    text = "".join(ch for ch in (text or default) if ch.isprintable()).strip()[:limit]
    return text or default


def _read_upload(upload) -> bytes:
    if upload is None:
        return b""
    data = upload.file.read()
    upload.file.close()
    return data


class Calculator:
    """The request-independent state: the bundle (loaded once, read-only), its form, the lock."""

    def __init__(self, bundle, limits: UploadLimits, keep: Path | None, allow_missing: bool = False):
        self.bundle = bundle
        self.limits = limits
        self.keeper = _Keeper(keep)
        self.fields = form_fields(bundle.schema(), allow_missing=allow_missing)
        self.spacing_rule = _spacing_rule(bundle)
        # One prediction at a time: Grad-CAM registers hooks on the shared network and PyRadiomics
        # keeps per-call state, so parallel calls on one model are not guaranteed to be independent.
        # Parsing, decoding, rasterizing and encoding still run concurrently.
        self.lock = threading.Lock()

    def identity(self) -> dict:
        return {"sha256": self.bundle.sha256, "chosen": _jsonable(self.bundle.chosen),
                "cutoffs": _jsonable(self.bundle.cutoffs)}

    def spacing(self) -> dict:
        """The bundle's pixel-spacing rule, for the page: whether it asks for the pixel size."""
        rule = self.spacing_rule
        return {**(rule.as_dict() or {"spacing": None}), "asks_pixel_size": rule.needs_spacing,
                "field": PIXEL_SIZE_FIELD, "label": "pixel size (mm)", "describe": self.spacing_rule.describe()}

    def image_and_mask(self, image_bytes, image_name, mask_bytes, mask_name, roi, frame, folder, pixel_size=None):
        image = read_uploaded_image(image_bytes, self.limits, filename=image_name,
                                    keep_path=folder / "image.upload" if folder else None, frame=frame)
        image = with_pixel_size(image, pixel_size, self.spacing_rule)
        if mask_bytes and roi:
            raise UploadError("both a mask file and a drawn ROI were sent", field="roi",
                              fix="send one of them: the mask file or the drawn outline")
        if mask_bytes:
            mask = read_uploaded_mask(mask_bytes, image.shape, self.limits, filename=mask_name,
                                      keep_path=folder / "mask.upload" if folder else None)
            shapes, source = None, "file"
        elif roi:
            shapes = parse_roi(roi)
            mask, source = rasterize_roi(shapes, image.shape), "drawn"
        else:
            raise UploadError("no ROI: draw the lesion outline or upload a mask file", field="roi",
                              fix="outline the lesion on the image (polygon or brush), or upload its mask")
        from sonorad.imaging.roi import MIN_ROI_PIXELS

        n = int(mask.sum())
        if n < MIN_ROI_PIXELS:
            what = "empty" if n == 0 else f"only {n} pixel"
            raise UploadError(f"the ROI is {what}; a lesion ROI needs at least {MIN_ROI_PIXELS} pixels",
                              field="mask" if source == "file" else "roi",
                              fix="outline the whole lesion" if source == "drawn"
                              else "upload the lesion mask of this image (non-zero = lesion)")
        return image, mask, shapes, source

    def predict(self, image_upload, mask_upload, roi, variables, case_id, frame, pixel_size=None) -> dict:
        folder = self.keeper.folder()
        try:
            payload = self._predict(image_upload, mask_upload, roi, variables, case_id, frame, folder, pixel_size)
        except SonoradError as exc:
            if folder is not None:  # a refused request is kept too, with the reason
                (folder / "error.json").write_text(json.dumps({"error": str(exc)}, indent=1))
            raise
        if folder is not None:
            (folder / "result.json").write_text(json.dumps(payload, indent=1))
        return payload

    def _predict(self, image_upload, mask_upload, roi, variables, case_id, frame, folder, pixel_size=None) -> dict:
        image_bytes = _read_upload(image_upload)
        mask_bytes = _read_upload(mask_upload)
        image, mask, shapes, source = self.image_and_mask(
            image_bytes, _clean_text(getattr(image_upload, "filename", None), "image", 200), mask_bytes,
            _clean_text(getattr(mask_upload, "filename", None), "mask", 200), roi, frame, folder, pixel_size)
        values = check_values(self.fields, parse_values(variables))
        case_id = _clean_text(case_id, "case", 64)
        with self.lock:
            result = self.bundle.predict_case(image, mask, values, case_id=case_id, explain=True, gradcam=True)
        payload = {
            "sonorad_version": _version(),
            "bundle": self.identity(),
            "inputs": {
                "case_id": case_id,
                "image": {"filename": image.path, "format": image.meta.get("format"), "rows": image.shape[0],
                          "cols": image.shape[1], "spacing_mm": list(image.spacing),
                          "spacing_source": image.meta.get("spacing_source"),
                          "sha256": hashlib.sha256(image_bytes).hexdigest()},
                "variables": _jsonable(values),
                "roi_source": source,
                "roi": None if shapes is None else [
                    {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in s.items()} for s in shapes],
            },
            "mask": encode_mask(mask),
            "result": _jsonable(result.to_dict()),
        }
        # to_dict leaves the overlay out: it travels as a PNG, like every image of the page.
        payload["result"]["gradcam"] = None if result.gradcam is None else png_data_url(result.gradcam)
        return payload

    def preview(self, image_upload, frame) -> dict:
        data = _read_upload(image_upload)
        image = read_uploaded_image(data, self.limits, frame=frame,
                                    filename=_clean_text(getattr(image_upload, "filename", None), "image", 200))
        return {"rows": image.shape[0], "cols": image.shape[1], "spacing_mm": list(image.spacing),
                "spacing_source": image.meta.get("spacing_source"), "format": image.meta.get("format"),
                "preview": png_data_url(_display_gray(image.pixels))}


def _spacing_rule(bundle):
    """The bundle's pixel-spacing rule (:mod:`sonorad.imaging.spacing`); none without radiomics."""
    from sonorad.imaging.spacing import SpacingRule, rule_of

    if (bundle.features or {}).get("radiomics") is None:
        return SpacingRule()
    return rule_of(bundle.radiomics_params)


def _version() -> str:
    from sonorad import __version__

    return __version__


_CARD_SECTIONS = {"intended_use": "Intended use", "not_intended_for": "Not intended for", "cohorts": "Cohorts",
                  "external_auc": "External validation (AUC, 95% CI)", "calibration": "Calibration",
                  "acquisition": "Acquisition of the training data", "limitations": "Limitations",
                  "bundle": "Models in this bundle"}


def _key_text(key) -> str:
    """A card field name as words (``keeps_training_vectors``); a model name (``a/b_c``) as it is."""
    text = str(key)
    return text.replace("_", " ") if re.fullmatch(r"[a-z0-9_]+", text) else text


def _render_value(value) -> str:
    """Nested card values as HTML tables and lists; every text escaped."""
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{html.escape(_key_text(k))}</th><td>{_render_value(v)}</td></tr>"
                       for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, (list, tuple)):
        if not value:
            return "—"
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return html.escape(", ".join(_render_value(v) if isinstance(v, float) else str(v) for v in value))
        return "<ul>" + "".join(f"<li>{_render_value(v)}</li>" for v in value) + "</ul>"
    if isinstance(value, float):
        return f"{value:.3f}"
    if value is None:
        return "—"
    return html.escape(str(value))


def _card_html(card: dict, identity: dict) -> str:
    """The model card page: the card's sections in a fixed order, then anything else it holds."""
    card = dict(_jsonable(card))
    title = html.escape(str(card.pop("title", "Model card")))
    order = [k for k in _CARD_SECTIONS if k in card] + [k for k in card if k not in _CARD_SECTIONS]
    body = "".join(f'<section class="card-section" id="card-{html.escape(k)}"><h2>'
                   f"{html.escape(_CARD_SECTIONS.get(k, k.replace('_', ' ').capitalize()))}</h2>"
                   f"{_render_value(card[k])}</section>" for k in order)
    template = (STATIC / "card.html").read_text(encoding="utf-8")
    return (template.replace("{{sha256}}", html.escape(str(identity["sha256"])))
            .replace("{{research_use}}", html.escape(RESEARCH_USE))
            .replace("{{title}}", title).replace("{{card}}", body))


def create_app(bundle, *, token: str | None = None, keep: Path | None = None,
               limits: UploadLimits | None = None, allowed_hosts: list[str] | None = None,
               allow_missing: bool = False):
    """Build the calculator's ASGI application around a loaded bundle.

    Parameters
    ----------
    bundle : sonorad.bundle.Bundle
        Loaded once by the caller and only read here.
    token : str, optional
        Access token required on every API call and on the model card (see :mod:`sonorad.serve.guard`).
    keep : Path, optional
        Folder for each request's files and result; default: nothing is written to disk.
    limits : UploadLimits, optional
    allowed_hosts : list of str, optional
        Accepted ``Host`` headers (refuses DNS-rebinding pages); default: any.
    allow_missing : bool
        Let the model impute variables left empty (see :func:`sonorad.serve.form.form_fields`).

    Returns
    -------
    ASGI application
    """
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.formparsers import MultiPartParser
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    limits = limits or UploadLimits()
    calc = Calculator(bundle, limits, keep, allow_missing)
    # Starlette spools file parts to a temporary file above spool_max_size (1 MB by default). The body is
    # already capped by the guard, so a spool as large as the cap keeps every upload in memory.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limits.max_upload_bytes + 1)

    # Swagger/ReDoc pages load their scripts from a CDN: off. The OpenAPI description stays.
    app = FastAPI(title="sonorad risk calculator", version=_version(), docs_url=None, redoc_url=None)
    app.state.calculator = calc
    _install_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/model-card", response_class=HTMLResponse, include_in_schema=False)
    def model_card():
        return HTMLResponse(_card_html(bundle.card, calc.identity()))

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/api/schema")
    def schema():
        return {"variables": calc.fields, "bundle": calc.identity(), "research_use": RESEARCH_USE,
                "spacing": calc.spacing(),
                "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels}}

    @app.get("/api/card")
    def card():
        return {"card": _jsonable(bundle.card), "markdown": getattr(bundle, "card_markdown", ""),
                "bundle": calc.identity(), "research_use": RESEARCH_USE}

    @app.post("/api/login")
    def login(payload: dict):
        offered = str(payload.get("token", ""))
        if token is None:
            return {"status": "no token needed"}
        import hmac

        if not hmac.compare_digest(offered.encode(), token.encode()):
            return _error_response(401, "wrong access token", "token", "ask whoever started the server")
        response = JSONResponse({"status": "ok"})
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.post("/api/image")
    def image_info(image: UploadFile = File(..., description="PNG, JPEG, BMP or DICOM file"),
                   frame: int | None = Form(None)):
        return calc.preview(image, frame)

    @app.post("/api/predict")
    def predict(
        image: UploadFile = File(..., description="PNG, JPEG, BMP or DICOM file"),
        mask: UploadFile | None = File(None, description="lesion mask file (non-zero = lesion), or send roi"),
        roi: str | None = Form(None, description='drawn ROI: {"shapes": [...]} or [[x, y], ...] (see docs)'),
        variables: str = Form("{}", description="JSON object: variable name -> value"),
        case_id: str = Form("case"),
        frame: int | None = Form(None),
        pixel_size_mm: str | None = Form(None, description="pixel size (mm) of an image file that records none "
                                                           "(PNG, JPEG, BMP): one number or 'row,col'"),
    ):
        return calc.predict(image, mask, roi, variables, case_id, frame, pixel_size_mm)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    wrapped = Guard(app, max_body_bytes=limits.max_upload_bytes, token=token, max_inflight=limits.max_inflight)
    if allowed_hosts:
        wrapped = TrustedHostMiddleware(wrapped, allowed_hosts=allowed_hosts)
    wrapped.calculator = calc  # for tests and the server wrapper
    wrapped.fastapi = app
    return wrapped
