"""Load a model bundle safely: :func:`load_bundle` -> :class:`Bundle`.

Loading checks, in this order, and stops with a :class:`BundleError` that says what to do:

1. ``manifest.json`` is a sonorad bundle manifest of a format version this sonorad reads, written by
   a compatible sonorad release (same major version; for 0.x the same minor version);
2. every file listed has the recorded sha256, no listed path leaves the folder, and no unlisted
   file is present;
3. when a key is given (``key=``, or the key file named by ``$SONORAD_BUNDLE_KEY_FILE``), the
   manifest carries a signature made with that key (:mod:`sonorad.bundle.signing`);
4. every ``.skops`` model holds only allowed types (:data:`sonorad.bundle.TRUSTED_TYPES`); a
   fine-tuned CNN is a state dict read with ``torch.load(weights_only=True)``.

Package versions that differ from those the bundle was written with are listed in
``Bundle.load_warnings`` (predictions may then differ in the last digits, or features of another
PyRadiomics version may differ more).
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from sonorad.bundle._trust import BundleError, load_skops
from sonorad.bundle.signing import SIGNATURE_FILE, resolve_key, verify_signature
from sonorad.bundle.writer import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, bundle_package_versions
from sonorad.provenance import sha256_file

__all__ = ["Bundle", "load_bundle", "compatible_versions"]

_MAX_ZIP_BYTES = 4 << 30


def _parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", str(text))
    if not match:
        raise BundleError(f"the bundle's sonorad version {text!r} is not a version number. "
                          "Fix: use a bundle written by sonorad.")
    return int(match.group(1)), int(match.group(2))


def compatible_versions(written: str, running: str) -> bool:
    """Whether sonorad ``running`` reads a bundle written by sonorad ``written``.

    Same major version, and for 0.x releases the same minor version (0.x releases may change
    what a model file holds).

    >>> compatible_versions("0.1.0", "0.1.3"), compatible_versions("0.1.0", "0.2.0")
    (True, False)
    """
    a, b = _parse_version(written), _parse_version(running)
    return a[0] == b[0] and (a[0] > 0 or a[1] == b[1])


def _read_json(folder: Path, name: str):
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder} has no {name}; it is not a complete sonorad model bundle. "
                          "Fix: give the bundle folder written by sonorad run (OUT/model).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{folder / name} is not valid JSON ({exc}). Fix: restore the original bundle.") from None


def _check_manifest(manifest, folder: Path) -> None:
    from sonorad import __version__

    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{folder / 'manifest.json'} is not a sonorad model bundle manifest. "
                          "Fix: give the folder written by sonorad run (OUT/model).")
    version = manifest.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        newer = isinstance(version, int) and version > BUNDLE_FORMAT_VERSION
        raise BundleError(
            f"this bundle has format version {version!r}; sonorad {__version__} reads format "
            f"{BUNDLE_FORMAT_VERSION}. Fix: " + (f"upgrade sonorad (the bundle was written by sonorad "
                                                 f"{manifest.get('sonorad_version')})" if newer else
                                                 "re-run the study with this sonorad to write a new bundle"))
    written = str(manifest.get("sonorad_version"))
    if not compatible_versions(written, __version__):
        raise BundleError(
            f"this bundle was written by sonorad {written}; this is sonorad {__version__}, which does not "
            f"read it (bundles are read by the release series that wrote them). Fix: install sonorad=={written} "
            "to use it, or re-run the study with this sonorad to write a new bundle.")


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts or name.startswith("~"):
        raise BundleError(f"the manifest lists the file {name!r}, which is outside the bundle folder. "
                          "The bundle was not loaded. Fix: use an unmodified bundle written by sonorad.")
    return path


def _verify_files(manifest: dict, folder: Path) -> str:
    if (folder / "manifest.json").is_symlink():
        raise BundleError("the bundle file manifest.json is a symbolic link; bundles must hold plain files. "
                          "Fix: copy the bundle with its files, not links to them.")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError("manifest.json lists no files. Fix: use an unmodified bundle written by sonorad.")
    for name, digest in files.items():
        rel = _safe_relative(name)
        path = folder / rel
        linked = next((folder / PurePosixPath(*rel.parts[:i]) for i in range(1, len(rel.parts) + 1)
                       if (folder / PurePosixPath(*rel.parts[:i])).is_symlink()), None)
        if linked is not None:
            raise BundleError(f"the bundle file {name} is a symbolic link; bundles must hold plain files "
                              f"({linked.relative_to(folder).as_posix()} links to {linked.readlink()}). It was not "
                              "loaded. Fix: copy the bundle with its files (cp -rL, or unzip the original), "
                              "not links to them.")
        if not path.is_file():
            raise BundleError(f"the bundle file {name} is missing. Fix: copy the whole bundle folder.")
        h = sha256_file(path)
        if h != digest:
            raise BundleError(f"the bundle file {name} was changed after the bundle was written (sha256 "
                              f"{h[:12]}... instead of {str(digest)[:12]}...). It was not loaded. Fix: restore the "
                              "original bundle; a bundle is never edited by hand.")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    extra = sorted(present - set(files) - {"manifest.json", SIGNATURE_FILE})
    if extra:
        raise BundleError(f"the bundle folder holds file(s) its manifest does not list: {extra[:5]}. "
                          "It was not loaded. Fix: remove them, or use an unmodified bundle.")
    return sha256_file(folder / "manifest.json")


def _extract_zip(path: Path) -> tuple[Path, tempfile.TemporaryDirectory]:
    """Unpack a zipped bundle into a temporary folder, refusing unsafe member names and sizes."""
    tmp = tempfile.TemporaryDirectory(prefix="sonorad-bundle-")
    root = Path(tmp.name)
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > _MAX_ZIP_BYTES:
                raise BundleError(f"{path} unpacks to more than {_MAX_ZIP_BYTES >> 30} GB; refusing it.")
            for m in members:
                rel = _safe_relative(m.filename)
                if (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise BundleError(f"{path} holds a symbolic link ({m.filename}); refusing it.")
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as dst:
                    dst.write(src.read())
    except zipfile.BadZipFile as exc:
        tmp.cleanup()
        raise BundleError(f"{path} is not a readable zip file ({exc}).") from None
    except BaseException:
        tmp.cleanup()
        raise
    if not (root / "manifest.json").is_file():
        tops = [p for p in root.iterdir() if p.is_dir()]
        if len(tops) == 1 and (tops[0] / "manifest.json").is_file():
            return tops[0], tmp
    return root, tmp


def _load_cnn(folder: Path, entry: dict, name: str):
    import torch

    from sonorad.deep.backbones import load_backbone
    from sonorad.deep.finetune import CNNClassifier

    meta = json.loads((folder / _safe_relative(entry["meta"])).read_text(encoding="utf-8"))
    try:
        state = torch.load(folder / _safe_relative(entry["file"]), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch refuses non-tensor content with various errors
        raise BundleError(f"the weights of model {name!r} are not a plain state dict ({type(exc).__name__}: {exc}); "
                          "not loaded.") from None
    import inspect

    params = meta.get("params") if isinstance(meta, dict) else None
    allowed = set(inspect.signature(CNNClassifier).parameters) - {"weights", "device"}
    if not isinstance(params, dict) or not set(params) <= allowed or "backbone" not in params:
        raise BundleError(f"the parameters of model {name!r} ({entry['meta']}) are not those of a sonorad CNN "
                          f"(allowed: {sorted(allowed)}); not loaded.")
    model = CNNClassifier(**params, weights=None)
    net = load_backbone(params["backbone"], None)
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise BundleError(f"the weights of model {name!r} do not fit backbone {params['backbone']}: {exc}") from None
    net.input_size = int(meta["input_size"])
    net.weights_id = str(meta["weights_id"])
    model.model_ = net.eval()
    model.classes_ = np.asarray(meta["classes"])
    model.best_epoch_ = meta.get("best_epoch")
    model.history_ = None
    return model


def _variables(schema: dict) -> dict:
    import dataclasses

    from sonorad.variables import VariableSpec

    known = {f.name for f in dataclasses.fields(VariableSpec)}
    out = {}
    for v in schema.get("variables", []):
        extra = {}
        if v.get("plausible_range") and "range" in known:
            extra["range"] = tuple(v["plausible_range"])
        if v.get("unseen") and "unseen" in known:
            extra["unseen"] = v["unseen"]
        if v.get("unit") and "unit" in known:
            extra["unit"] = v["unit"]
        out[v["name"]] = VariableSpec(name=v["name"], type=v["type"],
                                      levels=tuple(v["levels"]) if v.get("levels") else None,
                                      order=tuple(v["order"]) if v.get("order") else None,
                                      role=v.get("role"), description=v.get("description"), **extra)
    return out


def _version_warnings(manifest: dict) -> list[str]:
    now = bundle_package_versions()
    out = []
    for name, then in (manifest.get("packages") or {}).items():
        if name in now and then is not None and now[name] is not None and now[name] != then:
            out.append(f"{name} {now[name]} is installed; the bundle was written with {name} {then}")
    return out


class Bundle:
    """A loaded model bundle: scores new cases with the saved models and settings.

    Attributes
    ----------
    path : Path
        The bundle folder.
    variables : dict of str -> sonorad.variables.VariableSpec
        The declared variables the models use.
    card : dict
        The model card (``card.json``); ``card_markdown`` is ``card.md``.
    chosen : str
        The model :meth:`predict_case` reports.
    models : list of str
        Names of the models in the bundle.
    cutoffs : dict of str -> float
        Training-CV cut-off of each model (probability at or above: ``"high"`` risk group).
    sha256 : str
        sha256 of ``manifest.json``, which lists the sha256 of every other file: the bundle's identity.
    manifest, features, summary, explain, study : dict
        The bundle's JSON files.
    performance : dict or None
        ``performance.json``: each model's sensitivity, specificity, PPV and NPV at its cut-off
        (:func:`sonorad.bundle.results.cutoff_performance`); ``None`` for a bundle without one.
    uncertainty : dict or None
        ``uncertainty.json``: the bootstrap refits of the chosen model's final stage
        (:mod:`sonorad.bundle.uncertainty`): ``file``, ``resamples``, ``seed``, ``classifier``,
        ``note``; ``None`` for a bundle without one. :meth:`uncertainty_refits` loads them.
    segmenter : Segmenter or None
        The study's box-prompted segmenter, when the study named one (loaded on first use).
    load_warnings : list of str
        Package versions that differ from those the bundle was written with; a signature that was
        not checked (no key given).
    signature : str
        ``"verified"`` (signed with the key given), ``"not checked"`` (signed, no key given) or
        ``"unsigned"``.

    Notes
    -----
    The bundle owns what it derives from its files once and reuses across predictions: the
    PyRadiomics parameters (:attr:`radiomics_params`), each frozen backbone (:meth:`backbone`), the
    crop settings (:attr:`crop_settings`) and anything else kept with :meth:`cached`. Scoring code
    reads them through these, never through the bundle's private state.
    """

    def __init__(self, path: Path, manifest: dict, sha256: str, models: dict, *, tmp=None,
                 signature: str = "unsigned"):
        self.path = Path(path)
        self.signature = signature
        self.manifest = manifest
        self.sha256 = sha256
        self._models = models
        self._tmp = tmp  # keeps an unpacked zip alive as long as the bundle
        self.schema_data = _read_json(self.path, "schema.json")
        self.features = _read_json(self.path, "features.json")
        self.summary = _read_json(self.path, "training_summary.json")
        self.explain = _read_json(self.path, "explain.json")["models"]
        self.study = _read_json(self.path, "study.json")
        self.card = _read_json(self.path, "card.json")
        self.card_markdown = (self.path / "card.md").read_text(encoding="utf-8")
        self.performance = (_read_json(self.path, "performance.json")
                            if "performance.json" in manifest.get("files", {}) else None)
        self.uncertainty = (_read_json(self.path, "uncertainty.json")
                            if "uncertainty.json" in manifest.get("files", {}) else None)
        self.variables = _variables(self.schema_data)
        self.chosen = manifest["chosen"]
        self.cutoffs = {k: float(v) for k, v in manifest["cutoffs"].items()}
        self.load_warnings = _version_warnings(manifest)
        if signature == "not checked":
            self.load_warnings.append("the bundle is signed, but no key was given (--key-file or "
                                      "SONORAD_BUNDLE_KEY_FILE), so its signature was not checked")
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"Bundle({self.path}: {len(self._models)} model(s), chosen {self.chosen!r}, "
                f"sha256 {self.sha256[:12]})")

    @property
    def models(self) -> list[str]:
        """Names of the models in the bundle, in the order they were written."""
        return list(self._models)

    def model(self, name: str):
        """The fitted estimator ``name``."""
        if name not in self._models:
            raise BundleError(f"no model {name!r} in this bundle; it has {self.models}.")
        return self._models[name]

    def cached(self, key: str, make):
        """The bundle's memo of a value derived from its files: ``make()`` on the first call for
        ``key``, the same object afterwards.

        Everything the bundle derives once and reuses across predictions (loaded backbones, the
        Grad-CAM network, the nomogram, the PyRadiomics parameters) lives here, so it is built once
        per loaded bundle and released with it.

        Parameters
        ----------
        key : str
            Name of the value (``"nomogram"``, ``"gradcam"``, ``"backbone:<name>"``, ...).
        make : callable
            Builds the value; called without arguments, at most once per key (``None`` is kept
            too).

        Examples
        --------
        >>> bundle.cached("answer", lambda: 42)  # doctest: +SKIP
        42
        """
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def needs_center(self) -> bool:
        """Whether a model harmonises by center (ComBat), so each case's center matters."""
        def make():
            from sonorad.bundle.writer import iter_estimators
            from sonorad.harmonize import ComBatHarmonizer

            return any(isinstance(e, ComBatHarmonizer) for m in self._models.values() for e in iter_estimators(m))

        return self.cached("needs_center", make)

    @property
    def segmenter(self):
        """The box-prompted segmenter of the study (``masks.segmenter``) the bundle carries, loaded once
        with the safe loader (:func:`sonorad.segment.io.load_segmenter`); ``None`` without one."""
        if not self.manifest.get("segmenter"):
            return None

        def make():
            from sonorad.bundle.writer import SEGMENTER_FOLDER
            from sonorad.errors import ConfigError
            from sonorad.segment.io import load_segmenter

            try:
                return load_segmenter(self.path / SEGMENTER_FOLDER)
            except ConfigError as exc:
                raise BundleError(f"the bundle's segmenter cannot be loaded: {exc}") from None

        return self.cached("segmenter", make)

    def model_kind(self, name: str) -> str:
        """How model ``name`` is stored: ``"skops"`` (a scikit-learn pipeline on the feature table)
        or ``"cnn"`` (a fine-tuned network on the lesion crop)."""
        self.model(name)
        return self.manifest["models"][name]["kind"]

    @property
    def crop_settings(self) -> list[tuple[float, bool]]:
        """The lesion-crop settings ``(margin, mask_background)`` the bundle's networks need (its
        fine-tuned CNNs and deep-feature backbones), each once, in model order."""
        def make():
            settings = []
            for name in self.models:
                if self.model_kind(name) == "cnn":
                    model = self.model(name)
                    settings.append((float(model.margin), bool(model.mask_background)))
            for deep in self.features.get("deep") or []:
                settings.append((float(deep["margin"]), bool(deep["mask_background"])))
            return list(dict.fromkeys(settings))

        return list(self.cached("crop_settings", make))

    @property
    def radiomics_params(self) -> dict:
        """The PyRadiomics parameters saved with the bundle.

        When their hash differs from the one recorded at writing (another PyRadiomics version
        reading them differently), a line is added to :attr:`load_warnings`.
        """
        def make():
            from sonorad.features.radiomics import load_params, params_hash

            params = load_params(self.path / self.features["radiomics"]["params_file"])
            if params_hash(params) != self.features["radiomics"]["params_hash"]:
                from importlib import metadata

                self.load_warnings.append(
                    f"the PyRadiomics parameters hash differs from the one recorded at writing "
                    f"(pyradiomics {metadata.version('pyradiomics')} installed); features may differ")
            return params

        return self.cached("radiomics_params", make)

    def backbone(self, deep: dict):
        """The frozen backbone of one ``features.json`` deep entry (loaded once per bundle).

        Parameters
        ----------
        deep : dict
            One entry of ``bundle.features["deep"]`` (``backbone``, ``weights``, ``weights_sha256``,
            ``weights_id``, ...).

        Raises
        ------
        BundleError
            The installed weights are not those the models were trained on.
        """
        def make():
            from sonorad.bundle.writer import backbone_weights_sha256
            from sonorad.deep.backbones import load_backbone

            net = load_backbone(deep["backbone"], deep.get("weights", "default"))
            digest = backbone_weights_sha256(net)
            if digest != deep["weights_sha256"]:
                raise BundleError(
                    f"the {deep['backbone']} weights installed here (sha256 {digest[:12]}...) are not those the "
                    f"models were trained with ({deep['weights_sha256'][:12]}..., {deep['weights_id']}). Fix: "
                    "install the backbone weights listed in the bundle's features.json (same package versions "
                    "as in manifest.json).")
            return net

        return self.cached(f"backbone:{deep['backbone']}", make)

    def uncertainty_refits(self) -> list | None:
        """The refitted final stages of the chosen model (checked and loaded like its models), or
        ``None`` when the bundle has none. Loaded once."""
        info = self.uncertainty or {}
        listed = info.get("file")
        if not listed or listed not in self.manifest.get("files", {}):
            return None
        return self.cached("uncertainty", lambda: load_skops((self.path / listed).read_bytes(),
                                                              f"uncertainty refits ({listed})"))

    def schema(self) -> list[dict]:
        """The declared variables as JSON-able dicts (for a form): name, type, levels / order,
        role, description, unit, imputation value, training range and levels, plus ``center``
        when a model harmonises by center."""
        out = [dict(v) for v in self.schema_data["variables"]]
        if self.needs_center:
            out.append({"name": "center", "type": "categorical", "levels": None, "order": None,
                        "allowed_values": None, "role": "site",
                        "description": "center (hospital / scanner) of the image; the models harmonise features "
                                       "by center (ComBat); a center not among the training centers needs "
                                       "several cases scored together",
                        "unit": None, "imputation": None, "training_range": None,
                        "training_levels": self.summary.get("centers"), "n_missing_in_training": 0})
        return out

    def predict(self, cases, *, models=None, explain: bool = True, gradcam_dir=None, jobs: int = 1,
                cache=None, progress: bool = False):
        """Score a cases table (DataFrame as from :func:`sonorad.cohort.read_cases`, or a CSV path).

        See :func:`sonorad.bundle.scoring.predict_cases`.
        """
        from sonorad.bundle.scoring import predict_cases

        return predict_cases(self, cases, models=models, explain=explain, gradcam_dir=gradcam_dir, jobs=jobs,
                             cache=cache, progress=progress)

    def predict_case(self, image, mask, values: dict, *, case_id: str = "case", explain: bool = True,
                     gradcam: bool = True, models=None, roi_sensitivity: bool = False, roi_pixels: int | None = None):
        """Score one case held in memory; see :func:`sonorad.bundle.scoring.predict_case`."""
        from sonorad.bundle.scoring import predict_case

        return predict_case(self, image, mask, values, case_id=case_id, explain=explain, gradcam=gradcam,
                            models=models, roi_sensitivity=roi_sensitivity, roi_pixels=roi_pixels)

def load_bundle(path, *, key=None) -> Bundle:
    """Load a model bundle folder (or a zip of one) after checking format, versions, signature,
    hashes and types.

    Parameters
    ----------
    path : str or Path
        The bundle folder (``OUT/model``) or a ``.zip`` of it.
    key : bytes, str or Path, optional
        The signing key, or the path of its file; default: the file named by
        ``$SONORAD_BUNDLE_KEY_FILE``, else none. With a key, only a bundle signed with it loads.

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        Not a bundle, an incompatible format or sonorad version, a signature that does not match the
        key given, a changed, missing or linked file, or a model holding a type outside the
        allowlist; the message says what to do.
    """
    key = resolve_key(key)
    path = Path(path)
    tmp = None
    if path.is_file() and zipfile.is_zipfile(path):
        path, tmp = _extract_zip(path)
    if not path.is_dir():
        raise BundleError(f"{path} is not a bundle folder. Fix: give the folder written by sonorad run (OUT/model).")
    manifest = _read_json(path, "manifest.json")
    _check_manifest(manifest, path)
    signature = verify_signature(path, key)
    sha = _verify_files(manifest, path)
    try:
        models = {}
        for name, entry in manifest["models"].items():
            listed = _safe_relative(entry["file"]).as_posix()
            if listed not in manifest["files"]:
                raise BundleError(f"model {name!r} is in {listed}, which the manifest's file list does not hold.")
            if entry.get("kind") == "skops":
                models[name] = load_skops((path / listed).read_bytes(), f"model {name!r} ({listed})")
            elif entry.get("kind") == "cnn":
                models[name] = _load_cnn(path, entry, name)
            else:
                raise BundleError(f"model {name!r} has an unknown kind {entry.get('kind')!r}.")
        if not models or manifest["chosen"] not in models:
            raise BundleError(f"the chosen model {manifest.get('chosen')!r} is not among the bundle's models.")
        return Bundle(path, manifest, sha, models, tmp=tmp, signature=signature)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BundleError(f"{path / 'manifest.json'} or a file it lists is malformed ({type(exc).__name__}: {exc}). "
                          "Fix: use an unmodified bundle written by sonorad.") from None
