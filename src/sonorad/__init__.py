"""sonorad: ultrasound deep-learning radiomics, from images and masks to validated models.

Heavy dependencies (torch, PyRadiomics, SHAP) are imported where they are used, so importing
``sonorad`` and running ``sonorad --help`` stay fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_bundle"]


def __getattr__(name: str):
    # Lazy, so that ``import sonorad`` does not import the bundle machinery (pandas, scikit-learn).
    if name == "load_bundle":
        from sonorad.bundle import load_bundle

        return load_bundle
    raise AttributeError(f"module 'sonorad' has no attribute {name!r}")
