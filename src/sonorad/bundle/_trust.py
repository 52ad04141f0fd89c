"""Which object types a model bundle may contain, and the checks around skops files.

A ``.skops`` file lists the type of every object it holds. Before anything is built from a file,
:func:`check_skops` asks skops for the types it does not trust by default
(``skops.io.get_untrusted_types``) and refuses the file unless every one of them is in
:data:`TRUSTED_TYPES`: sonorad's own estimators and the library types sonorad's model zoo needs
(scikit-learn internals, XGBoost, LightGBM). Nothing outside that list is ever instantiated, and no
pickle is ever read.
"""

from __future__ import annotations

from pathlib import Path

from sonorad.errors import SonoradError

__all__ = ["BundleError", "TRUSTED_TYPES", "trusted_types", "check_skops", "dump_skops", "load_skops"]


class BundleError(SonoradError):
    """A model bundle cannot be written or loaded; the message says why and what to do."""


#: Types a bundle's ``.skops`` files may hold beyond skops' default trust (fully qualified names).
TRUSTED_TYPES: tuple[str, ...] = (
    # sonorad estimators
    "sonorad.clinical.ClinicalEncoder",
    "sonorad.harmonize.ComBatHarmonizer",
    "sonorad.models.ImbalanceWrapper",
    "sonorad.models.PlattCalibratedSVC",
    "sonorad.scores.RadScore",
    "sonorad.scores.DLScore",
    "sonorad.selection.ZScore",
    "sonorad.selection.ICCFilter",
    "sonorad.selection.UnivariateFilter",
    "sonorad.selection.CorrelationFilter",
    "sonorad.selection.LassoSelector",
    "sonorad.selection.MRMRSelector",
    "sonorad.selection.scaling.ZScore",
    "sonorad.selection.filters.ICCFilter",
    "sonorad.selection.filters.UnivariateFilter",
    "sonorad.selection.filters.CorrelationFilter",
    "sonorad.selection.selectors.LassoSelector",
    "sonorad.selection.selectors.MRMRSelector",
    # the designs' models over the model input table
    "sonorad.designs.base.ColumnModel",
    "sonorad.designs.base.ScoreStack",
    # a bundle model wrapped in a site recalibration (sonorad recalibrate)
    "sonorad.bundle.recalibrate.RecalibratedModel",
    # FeatureBlocks, wherever the designs package keeps it
    "sonorad.families.FeatureBlocks",
    "sonorad.designs.FeatureBlocks",
    "sonorad.designs._common.FeatureBlocks",
    "sonorad.designs.blocks.FeatureBlocks",
    "sonorad.designs.base.FeatureBlocks",
    # scikit-learn internals of zoo models (trees, calibrated SVM, neighbour search)
    "sklearn.tree._tree.Tree",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    # gradient-boosting libraries (their boosters restore from their own model formats, not pickle)
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    # plain containers
    "collections.OrderedDict",
    "collections.defaultdict",
)


def _feature_blocks_name() -> list[str]:
    """The qualified name of FeatureBlocks where it lives now (the designs package moves it)."""
    import importlib

    for module in ("sonorad.designs", "sonorad.families", "sonorad.designs._common"):
        try:
            cls = getattr(importlib.import_module(module), "FeatureBlocks")
        except (ImportError, AttributeError):
            continue
        return [f"{cls.__module__}.{cls.__qualname__}"]
    return []


def trusted_types() -> list[str]:
    """:data:`TRUSTED_TYPES` plus the current home of ``FeatureBlocks``."""
    return sorted(set(TRUSTED_TYPES) | set(_feature_blocks_name()))


def _untrusted(data: bytes) -> list[str]:
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=data))


def check_skops(data: bytes, source: str) -> list[str]:
    """The untrusted types of a skops payload, after checking each is allowed; BundleError otherwise."""
    try:
        found = _untrusted(data)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file, whatever the library says
        raise BundleError(f"{source} is not a readable skops file ({type(exc).__name__}: {exc}). "
                          "Fix: rewrite the bundle with sonorad, or restore the file from the original bundle.") from None
    allowed = set(trusted_types())
    foreign = [t for t in found if t not in allowed]
    if foreign:
        raise BundleError(
            f"{source} holds object type(s) a sonorad bundle never contains: {', '.join(foreign)}. "
            "It was not loaded, and nothing in it was run. Fix: use a bundle written by sonorad "
            "(write_bundle / sonorad run); if you wrote this model yourself with a new estimator class, "
            "add its type to sonorad.bundle.TRUSTED_TYPES only after reviewing it."
        )
    return found


def dump_skops(model, path: Path, name: str) -> bytes:
    """Write ``model`` to ``path`` with skops (deflated), after checking its types are allowed."""
    import zipfile

    import skops.io as sio

    try:
        data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:  # noqa: BLE001 - skops raises TypeError/UnsupportedTypeException/...
        raise BundleError(f"model {name!r} cannot be saved in the skops format ({type(exc).__name__}: {exc}). "
                          "Fix: leave it out of the bundle (exclude=) or convert the unsupported attribute "
                          "to arrays in the estimator's __getstate__/__setstate__.") from None
    check_skops(data, f"model {name!r}")
    path.write_bytes(data)
    return data


def load_skops(data: bytes, source: str):
    """Build the object of a skops payload whose types passed :func:`check_skops`."""
    import skops.io as sio

    found = check_skops(data, source)
    try:
        return sio.loads(data, trusted=found)
    except Exception as exc:  # noqa: BLE001 - version skew inside a library, corrupt content
        raise BundleError(f"{source} could not be rebuilt ({type(exc).__name__}: {exc}). "
                          "Fix: load the bundle with the package versions listed in its manifest.json.") from None
