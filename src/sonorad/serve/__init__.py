"""The web risk calculator (``sonorad serve``): one patient's image, ROI and clinical values in,
risk, explanation and heat map out, served offline by sonorad itself. See ``docs/serve.md``.

Importing this package is cheap; FastAPI and uvicorn are imported by :func:`create_app` and
:func:`serve` when they are called.
"""

from sonorad.serve.uploads import UploadError, UploadLimits

__all__ = ["UploadError", "UploadLimits", "create_app", "serve"]


def create_app(*args, **kwargs):
    """See :func:`sonorad.serve.app.create_app`."""
    from sonorad.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)


def serve(*args, **kwargs):
    """See :func:`sonorad.serve.server.serve`."""
    from sonorad.serve.server import serve as _serve

    return _serve(*args, **kwargs)
