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
``POST /api/login``       ``{"token": T}`` -> a session cookie (when the server has a token; see ``auth``)
``POST /api/logout``      ends the session and clears its cookie
``GET /healthz``          liveness

Every refusal is JSON ``{"error", "field", "fix"}`` with a 4xx status; an unexpected failure is a 500
with a generic message (the traceback goes to the server log only).

Predictions run in a pool (:mod:`sonorad.serve.workers`; ``sonorad serve``: one worker process per
core), which scores the chosen model only. When every worker is busy and the queue is full, the answer
is 503 with ``Retry-After``; past the processing time limit (``sonorad serve --request-timeout``), 504
and the prediction is stopped; a request whose client has gone is dropped before it starts.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import io
import json
import logging
import uuid
from importlib import resources
from pathlib import Path

import numpy as np
# At module level: FastAPI resolves the endpoint annotations in this module's namespace.
from fastapi import File, Form, Request, UploadFile

from sonorad.errors import CaseError, SonoradError
from sonorad.serve.card import card_html
from sonorad.serve.form import check_values, form_fields, parse_values
from sonorad.serve.auth import install_auth
from sonorad.serve.guard import Guard
from sonorad.serve.roi import check_roi_origin, parse_roi, rasterize_roi
from sonorad.serve.uploads import (
    PIXEL_SIZE_FIELD,
    UploadError,
    UploadLimits,
    read_uploaded_image,
    read_uploaded_mask,
    with_pixel_size,
)
from sonorad.serve.workers import ClientGone, InlinePool, PoolBusy, PoolTimeout, ProcessPool, WorkerFailed

__all__ = ["create_app", "decode_mask", "encode_mask", "png_data_url", "score_case"]

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

    @app.exception_handler(PoolBusy)
    async def _busy(request, exc: PoolBusy):
        response = _error_response(503, "the calculator is busy: every worker is scoring and the queue is full",
                                   None, f"send the request again in {exc.retry_after} s")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(PoolTimeout)
    async def _timeout(request, exc: PoolTimeout):
        where = "was stopped" if exc.started else "waited for a free worker and was dropped"
        return _error_response(504, f"the prediction {where} after {exc.seconds:g} s, the processing time limit",
                               None, "send it again when the server is less busy, or ask whoever runs the server "
                                     "to raise the limit (sonorad serve --request-timeout)")

    @app.exception_handler(ClientGone)
    async def _gone(request, exc: ClientGone):  # nobody reads it: the client has gone
        return _error_response(499, "the client closed the request; its prediction was dropped")

    @app.exception_handler(WorkerFailed)
    async def _worker(request, exc: WorkerFailed):
        logging.getLogger("sonorad.serve").error("prediction failed in a worker: %s", exc.detail)
        return _error_response(500, "the server failed on this request; the details are in the server log")

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


def score_case(bundle, *, image, mask, values: dict, case_id: str, roi_sensitivity: bool = False) -> dict:
    """The ``result`` of a payload: the chosen model's prediction of one case, as JSON values.

    Runs where the pool puts it (a worker process, or this one): only the chosen model is scored (its
    probability is the same as when every model of the bundle runs), explained (SHAP, nomogram) and
    shown (Grad-CAM overlay, as a PNG data URL).
    """
    result = bundle.predict_case(image, mask, values, case_id=case_id, explain=True, gradcam=True,
                                 models=[bundle.chosen], roi_sensitivity=roi_sensitivity)
    out = _jsonable(result.to_dict())
    # to_dict leaves the overlay out: it travels as a PNG, like every image of the page.
    out["gradcam"] = None if result.gradcam is None else png_data_url(result.gradcam)
    return out


class Calculator:
    """The request-independent state: the bundle (loaded once, read-only), its form, the prediction pool.

    ``workers`` > 0 scores in that many worker processes (:class:`sonorad.serve.workers.ProcessPool`);
    0 scores in this process, one case at a time (:class:`sonorad.serve.workers.InlinePool`).
    Parsing, decoding and rasterizing run in the request's thread either way.
    """

    def __init__(self, bundle, limits: UploadLimits, keep: Path | None, allow_missing: bool = False,
                 workers: int = 0, max_queue: int = 8):
        self.bundle = bundle
        self.limits = limits
        self.keeper = _Keeper(keep)
        self.fields = form_fields(bundle.schema(), allow_missing=allow_missing)
        self.spacing_rule = _spacing_rule(bundle)
        self.roi_sensitivity = True  # every answer has the risk under an eroded and a dilated outline
        self.pool = (ProcessPool(bundle, workers=workers, max_queue=max_queue) if workers
                     else InlinePool(bundle, max_queue=max_queue))

    def close(self) -> None:
        """Stop the prediction pool (its worker processes, if any)."""
        self.pool.close()

    def identity(self) -> dict:
        return {"id": str(self.bundle.sha256)[:12], "sha256": self.bundle.sha256,
                "chosen": _jsonable(self.bundle.chosen), "cutoffs": _jsonable(self.bundle.cutoffs)}

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

    def predict(self, image_upload, mask_upload, roi, variables, case_id, frame, pixel_size=None, *,
                timeout: float | None = None, gone=None, roi_origin=None) -> dict:
        """The payload of one prediction; ``timeout`` (seconds, None: none) and ``gone`` (a callable
        answering whether the client has left) bound its time in the pool."""
        folder = self.keeper.folder()
        try:
            payload = self._predict(image_upload, mask_upload, roi, variables, case_id, frame, folder, pixel_size,
                                    timeout, gone, roi_origin)
        except SonoradError as exc:
            if folder is not None:  # a refused request is kept too, with the reason
                (folder / "error.json").write_text(json.dumps({"error": str(exc)}, indent=1))
            raise
        if folder is not None:
            (folder / "result.json").write_text(json.dumps(payload, indent=1))
        return payload

    def _predict(self, image_upload, mask_upload, roi, variables, case_id, frame, folder, pixel_size=None,
                 timeout=None, gone=None, roi_origin=None) -> dict:
        check_roi_origin(roi_origin, "drawn")  # a bad roi_origin is refused before any work
        image_bytes = _read_upload(image_upload)
        mask_bytes = _read_upload(mask_upload)
        image, mask, shapes, source = self.image_and_mask(
            image_bytes, _clean_text(getattr(image_upload, "filename", None), "image", 200), mask_bytes,
            _clean_text(getattr(mask_upload, "filename", None), "mask", 200), roi, frame, folder, pixel_size)
        values = check_values(self.fields, parse_values(variables))
        case_id = _clean_text(case_id, "case", 64)
        job = {"image": image, "mask": mask, "values": values, "case_id": case_id,
               "roi_sensitivity": self.roi_sensitivity}
        result = self.pool.run(score_case, job, timeout=float("inf") if timeout is None else float(timeout), gone=gone)
        payload = {
            "sonorad_version": _version(),
            "scored_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "bundle": self.identity(),
            "inputs": {
                "case_id": case_id,
                "image": {"filename": image.path, "format": image.meta.get("format"), "rows": image.shape[0],
                          "cols": image.shape[1], "spacing_mm": list(image.spacing),
                          "spacing_source": image.meta.get("spacing_source"),
                          "sha256": hashlib.sha256(image_bytes).hexdigest()},
                "variables": _jsonable(values),
                "roi_source": check_roi_origin(roi_origin, source),
                "roi": None if shapes is None else [
                    {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in s.items()} for s in shapes],
            },
            "mask": encode_mask(mask),
            "result": result,
        }
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


def _closing(calc):
    """The app's lifespan: the prediction pool is stopped when the server shuts down."""
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            calc.close()

    return lifespan


def _gone_check(request):
    """A callable, for the request's worker thread, answering whether the client has disconnected."""
    import anyio.from_thread

    def gone() -> bool:
        try:
            return bool(anyio.from_thread.run(request.is_disconnected))
        except Exception:  # noqa: BLE001 - no event loop to ask (a direct call): the client is there
            return False

    return gone


def create_app(bundle, *, token: str | None = None, keep: Path | None = None,
               limits: UploadLimits | None = None, allowed_hosts: list[str] | None = None,
               allow_missing: bool = False, workers: int = 0, max_queue: int = 8):
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
    workers : int
        Worker processes that score in parallel, each with the bundle loaded
        (:func:`sonorad.serve.workers.default_workers`: one per core); 0 scores in this process, one
        case at a time.
    max_queue : int
        Predictions that may wait for a worker; one more is answered 503 with ``Retry-After``.

    Returns
    -------
    ASGI application
        Its ``close()`` stops the worker processes (also done when the server shuts down).
    """
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.formparsers import MultiPartParser
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    limits = limits or UploadLimits()
    calc = Calculator(bundle, limits, keep, allow_missing, workers=workers, max_queue=max_queue)
    # Starlette spools file parts to a temporary file above spool_max_size (1 MB by default). The body is
    # already capped by the guard, so a spool as large as the cap keeps every upload in memory.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limits.max_upload_bytes + 1)

    # Swagger/ReDoc pages load their scripts from a CDN: off. The OpenAPI description stays.
    app = FastAPI(title="sonorad risk calculator", version=_version(), docs_url=None, redoc_url=None,
                  lifespan=_closing(calc))
    app.state.calculator = calc
    _install_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/model-card", response_class=HTMLResponse, include_in_schema=False)
    def model_card():
        return HTMLResponse(card_html(bundle.card, calc.identity(), RESEARCH_USE))

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/api/schema")
    def schema():
        return {"variables": calc.fields, "bundle": calc.identity(), "research_use": RESEARCH_USE,
                "spacing": calc.spacing(),  # and whether a segmenter proposes outlines (sonorad.serve.propose)
                "segmenter": getattr(app.state, "segmenter", None) or {"available": False, "description": None},
                "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels}}

    @app.get("/api/card")
    def card():
        return {"card": _jsonable(bundle.card), "markdown": getattr(bundle, "card_markdown", ""),
                "bundle": calc.identity(), "research_use": RESEARCH_USE}

    access = install_auth(app, token)  # POST /api/login and /api/logout (sonorad.serve.auth)

    @app.post("/api/image")
    def image_info(image: UploadFile = File(..., description="PNG, JPEG, BMP or DICOM file"),
                   frame: int | None = Form(None)):
        return calc.preview(image, frame)

    @app.post("/api/predict")
    def predict(
        request: Request,
        image: UploadFile = File(..., description="PNG, JPEG, BMP or DICOM file"),
        mask: UploadFile | None = File(None, description="lesion mask file (non-zero = lesion), or send roi"),
        roi: str | None = Form(None, description='drawn ROI: {"shapes": [...]} or [[x, y], ...] (see docs)'),
        variables: str = Form("{}", description="JSON object: variable name -> value"),
        case_id: str = Form("case"),
        frame: int | None = Form(None),
        pixel_size_mm: str | None = Form(None, description="pixel size (mm) of an image file that records none "
                                                           "(PNG, JPEG, BMP): one number or 'row,col'"),
        roi_origin: str | None = Form(None, description="how the drawn roi came about: drawn, proposed or edited"),
    ):
        # the guard's processing time limit (sonorad serve --request-timeout) bounds the wait and the work
        return calc.predict(image, mask, roi, variables, case_id, frame, pixel_size_mm,
                            timeout=request.scope.get("sonorad.max_request_seconds"), gone=_gone_check(request),
                            roi_origin=roi_origin)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    wrapped = Guard(app, max_body_bytes=limits.max_upload_bytes, token=token, max_inflight=limits.max_inflight,
                    access=access)
    if allowed_hosts:
        wrapped = TrustedHostMiddleware(wrapped, allowed_hosts=allowed_hosts)
    wrapped.calculator = calc  # for tests and the server wrapper
    wrapped.close = calc.close
    wrapped.access = access
    wrapped.fastapi = app
    return wrapped
