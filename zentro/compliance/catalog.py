"""Framework catalogs and the crosswalk between them, loaded from the JSON files in ``catalogs/``.

A control is addressed by a tag ``"KEY:ID"`` (``"SOC2:CC6.1"``, ``"ISO27001:A.5.9"``,
``"NIST80053:AC-2(1)"``), the same strings audit events carry. Each framework file lists its
families and controls (id, short title, family, weight, freshness SLA in days, and
framework-specific extras kept in ``Control.attrs``); ``crosswalk.json`` lists undirected edges
between controls of different frameworks, each ``full`` or ``partial``.

Everything is validated on load and any defect raises ``CatalogError`` naming the file and the
item, so a broken catalog never reaches the evidence engine. ``load_catalog()`` is cached: the
files are read once per process.
"""
from __future__ import annotations

import functools
import gc
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"

# Display order; each key is the prefix of its control tags.
FRAMEWORKS: tuple[str, ...] = (
    "SOC2", "ISO27001", "PCIDSS", "HIPAA", "NISTCSF", "CISV8", "NIST800171", "GDPR", "NIST80053",
)
FRAMEWORK_FILES: dict[str, str] = {
    "SOC2": "soc2.json",
    "ISO27001": "iso27001.json",
    "PCIDSS": "pci_dss.json",
    "HIPAA": "hipaa.json",
    "NISTCSF": "nist_csf.json",
    "CISV8": "cis_v8.json",
    "NIST800171": "nist_800_171.json",
    "GDPR": "gdpr_art32.json",
    "NIST80053": "nist_800_53.json",
}
CROSSWALK_FILE = "crosswalk.json"

# Canonical URL slug per framework, then every accepted alias (slugs and keys match case-insensitively).
FRAMEWORK_SLUGS: dict[str, str] = {
    "SOC2": "soc2",
    "ISO27001": "iso27001",
    "PCIDSS": "pci-dss",
    "HIPAA": "hipaa",
    "NISTCSF": "nist-csf",
    "CISV8": "cis-v8",
    "NIST800171": "nist-800-171",
    "GDPR": "gdpr-art32",
    "NIST80053": "nist-800-53",
}
FRAMEWORK_ALIASES: dict[str, str] = {
    **{slug: key for key, slug in FRAMEWORK_SLUGS.items()},
    **{key.lower(): key for key in FRAMEWORKS},
    "soc-2": "SOC2",
    "iso-27001": "ISO27001",
    "iso27001-2022": "ISO27001",
    "pci": "PCIDSS",
    "pcidss": "PCIDSS",
    "pci-dss-4": "PCIDSS",
    "hipaa-security": "HIPAA",
    "csf": "NISTCSF",
    "nist-csf-2": "NISTCSF",
    "cis": "CISV8",
    "cis-controls": "CISV8",
    "nist-171": "NIST800171",
    "nist-800171": "NIST800171",
    "cmmc": "NIST800171",
    "cmmc-l2": "NIST800171",
    "gdpr": "GDPR",
    "gdpr-32": "GDPR",
    "nist-53": "NIST80053",
    "nist-80053": "NIST80053",
    "fedramp": "NIST80053",
    "fedramp-moderate": "NIST80053",
}

Strength = Literal["full", "partial"]
_CONTROL_FIELDS = ("id", "title", "family", "weight", "freshness_days")


class CatalogError(ValueError):
    """A catalog file is missing or invalid, or a framework/control reference is unknown."""


class UnknownFramework(CatalogError, KeyError):
    def __str__(self) -> str:  # KeyError would otherwise show the repr
        return str(self.args[0]) if self.args else "unknown framework"


class UnknownControl(CatalogError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown control"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Family(_Strict):
    id: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=120)


class Control(_Strict):
    framework: str
    id: str = Field(min_length=1, max_length=40, pattern=r"^[^:\s]+$")
    title: str = Field(min_length=1, max_length=120)
    family: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, le=10)
    freshness_days: int = Field(gt=0, le=3650)
    attrs: dict[str, Any] = Field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.framework}:{self.id}"


class Framework(_Strict):
    key: str = Field(pattern=r"^[A-Z0-9]+$")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    catalog_version: int = Field(ge=1)
    source: str = Field(min_length=1)
    source_url: str = Field(pattern=r"^https://")
    licence: str = Field(min_length=1)
    coverage: str = Field(min_length=1)
    default_freshness_days: int = Field(gt=0, le=3650)
    families: tuple[Family, ...] = Field(min_length=1)
    controls: tuple[Control, ...] = Field(min_length=1)
    _by_id: dict[str, Control] = PrivateAttr(default_factory=dict)
    _families: dict[str, Family] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        self._families = {f.id: f for f in self.families}
        self._by_id = {c.id: c for c in self.controls}

    @property
    def slug(self) -> str:
        return FRAMEWORK_SLUGS.get(self.key, self.key.lower())

    def control(self, control_id: str) -> Control:
        try:
            return self._by_id[control_id]
        except KeyError:
            raise UnknownControl(f"{self.key} has no control {control_id!r}") from None

    def has(self, control_id: str) -> bool:
        return control_id in self._by_id

    def family(self, family_id: str) -> Family:
        try:
            return self._families[family_id]
        except KeyError:
            raise CatalogError(f"{self.key} has no family {family_id!r}") from None

    def controls_in(self, family_id: str) -> list[Control]:
        self.family(family_id)
        return [c for c in self.controls if c.family == family_id]

    def tags(self) -> list[str]:
        return [c.tag for c in self.controls]


class Edge(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str = Field(alias="from", pattern=r"^[A-Z0-9]+:\S+$")
    to: str = Field(pattern=r"^[A-Z0-9]+:\S+$")
    strength: Strength


class Crosswalk(_Strict):
    catalog_version: int = Field(ge=1)
    source: str = Field(min_length=1)
    edges: tuple[Edge, ...]


def _read_json(path: Path) -> tuple[Any, str]:
    """Return (parsed document, canonical JSON text) or raise CatalogError naming the file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path.name}: catalog file is missing from {path.parent}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path.name}: cannot be read ({exc})") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return doc, canonical


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    extra = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{extra}"


def _parse_framework(name: str, doc: Any, expected_key: str) -> Framework:
    if not isinstance(doc, dict):
        raise CatalogError(f"{name}: top level must be an object")
    if doc.get("key") != expected_key:
        raise CatalogError(f"{name}: key must be {expected_key!r}, found {doc.get('key')!r}")
    families = doc.get("families")
    controls = doc.get("controls")
    if not isinstance(families, list) or not isinstance(controls, list):
        raise CatalogError(f"{name}: families and controls must be lists")
    default_fresh = doc.get("default_freshness_days")

    seen_families: set[str] = set()
    for i, fam in enumerate(families):
        if not isinstance(fam, dict):
            raise CatalogError(f"{name}: families[{i}] must be an object")
        fid = fam.get("id")
        if fid in seen_families:
            raise CatalogError(f"{name}: duplicate family id {fid!r} (families[{i}])")
        seen_families.add(fid)

    parsed: list[Control] = []
    seen: set[str] = set()
    for i, row in enumerate(controls):
        label = f"controls[{i}]"
        if not isinstance(row, dict):
            raise CatalogError(f"{name}: {label} must be an object")
        cid = row.get("id")
        if isinstance(cid, str):
            label = f"control {cid!r}"
        if cid in seen:
            raise CatalogError(f"{name}: duplicate control id {cid!r}")
        seen.add(cid)
        if "attrs" in row or "framework" in row:
            raise CatalogError(f"{name}: {label}: 'attrs' and 'framework' are reserved field names")
        fields = {k: row[k] for k in _CONTROL_FIELDS if k in row}
        fields.setdefault("freshness_days", default_fresh)
        try:
            control = Control(framework=expected_key, attrs={k: v for k, v in row.items() if k not in _CONTROL_FIELDS},
                              **fields)
        except ValidationError as exc:
            raise CatalogError(f"{name}: {label}: {_describe(exc)}") from None
        if control.family not in seen_families:
            raise CatalogError(f"{name}: {label} points at missing family {control.family!r}")
        parsed.append(control)

    meta = {k: v for k, v in doc.items() if k not in ("families", "controls")}
    try:
        framework = Framework(**meta, families=families, controls=parsed)
    except ValidationError as exc:
        raise CatalogError(f"{name}: {_describe(exc)}") from None
    except TypeError as exc:
        raise CatalogError(f"{name}: {exc}") from None
    empty = [f.id for f in framework.families if not any(c.family == f.id for c in framework.controls)]
    if empty:
        raise CatalogError(f"{name}: family {empty[0]!r} has no controls")
    return framework


class Catalog:
    """All frameworks and the crosswalk, indexed for lookups by tag."""

    def __init__(self, directory: Path, frameworks: dict[str, Framework], crosswalk: Crosswalk, digest: str):
        self.directory = directory
        self.frameworks = frameworks
        self.crosswalk = crosswalk
        self.catalog_version = crosswalk.catalog_version
        self._hash = digest
        self._controls: dict[str, Control] = {c.tag: c for fw in frameworks.values() for c in fw.controls}
        adjacency: dict[str, dict[str, Strength]] = {tag: {} for tag in self._controls}
        for i, edge in enumerate(crosswalk.edges):
            where = f"{CROSSWALK_FILE}: edges[{i}] {edge.from_} -> {edge.to}"
            for tag in (edge.from_, edge.to):
                if tag not in self._controls:
                    raise CatalogError(f"{where}: unknown control {tag!r}")
            if edge.from_.split(":", 1)[0] == edge.to.split(":", 1)[0]:
                raise CatalogError(f"{where}: edges must join two different frameworks")
            if edge.to in adjacency[edge.from_]:
                raise CatalogError(f"{where}: duplicate edge (edges are undirected)")
            adjacency[edge.from_][edge.to] = edge.strength
            adjacency[edge.to][edge.from_] = edge.strength
        order = {tag: i for i, tag in enumerate(self._controls)}
        self._neighbours: dict[str, tuple[tuple[str, Strength], ...]] = {
            tag: tuple(sorted(near.items(), key=lambda kv: order[kv[0]])) for tag, near in adjacency.items()
        }

    # -- frameworks
    def framework(self, key: str) -> Framework:
        try:
            return self.frameworks[key]
        except KeyError:
            raise UnknownFramework(f"unknown framework {key!r}") from None

    def resolve_framework(self, slug_or_key: str) -> Framework:
        key = FRAMEWORK_ALIASES.get(str(slug_or_key).strip().lower())
        if key is None or key not in self.frameworks:
            raise UnknownFramework(f"unknown framework {slug_or_key!r}")
        return self.frameworks[key]

    # -- controls
    def control(self, tag: str) -> Control:
        try:
            return self._controls[tag]
        except (KeyError, TypeError):
            pass
        key = tag.split(":", 1)[0] if isinstance(tag, str) and ":" in tag else None
        if key is None:
            raise UnknownControl(f"control tag {tag!r} is not of the form FRAMEWORK:ID")
        self.framework(key)
        raise UnknownControl(f"unknown control {tag!r}")

    def has(self, tag: str) -> bool:
        return tag in self._controls

    def all_tags(self) -> list[str]:
        return list(self._controls)

    def tags_for(self, framework_key: str) -> list[str]:
        return self.framework(framework_key).tags()

    def unknown_tags(self, tags: Iterable[str]) -> list[str]:
        return [t for t in tags if t not in self._controls]

    # -- crosswalk
    def neighbours(self, tag: str) -> list[tuple[str, Strength]]:
        """Controls joined to ``tag`` by a crosswalk edge, with the edge strength (edges are undirected)."""
        self.control(tag)
        return list(self._neighbours[tag])

    def equivalents(self, tag: str) -> set[str]:
        """``tag`` plus its direct crosswalk neighbours: the controls evidence for ``tag`` also speaks to.

        One hop only, on purpose: most edges are ``partial`` and broad controls (SOC 2 CC6.1, ISO A.5.15)
        are hubs, so following edges transitively would let an access-review event count as evidence for
        media sanitisation or key management three hops away, and the closure of the whole crosswalk is
        nearly one component. A direct edge is a reviewed statement that two controls overlap; a path is not.
        """
        return {tag, *(t for t, _ in self.neighbours(tag))}

    # -- versioning
    def content_hash(self) -> str:
        """SHA-256 over the canonical JSON (sorted keys, no whitespace) of every catalog file, by file name."""
        return self._hash

    @property
    def version(self) -> dict[str, Any]:
        return {
            "catalog_version": self.catalog_version,
            "content_hash": self._hash,
            "frameworks": {key: fw.version for key, fw in self.frameworks.items()},
        }


def read_catalog(directory: str | Path | None = None) -> Catalog:
    """Read and validate every catalog file in ``directory`` (default: the shipped catalogs). Not cached."""
    root = Path(directory) if directory is not None else CATALOG_DIR
    # Loading allocates tens of thousands of objects that all stay alive; letting the cyclic GC scan the
    # whole heap several times meanwhile costs more than the parsing itself (~130 ms against ~50 ms).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _read_catalog(root)
    finally:
        if was_enabled:
            gc.enable()


def _read_catalog(root: Path) -> Catalog:
    if not root.is_dir():
        raise CatalogError(f"catalog directory {root} does not exist")
    digest = hashlib.sha256()
    frameworks: dict[str, Framework] = {}
    for key in FRAMEWORKS:
        name = FRAMEWORK_FILES[key]
        doc, canonical = _read_json(root / name)
        frameworks[key] = _parse_framework(name, doc, key)
        digest.update(f"{name}\0{canonical}\0".encode())
    doc, canonical = _read_json(root / CROSSWALK_FILE)
    digest.update(f"{CROSSWALK_FILE}\0{canonical}\0".encode())
    try:
        crosswalk = Crosswalk.model_validate(doc)
    except ValidationError as exc:
        raise CatalogError(f"{CROSSWALK_FILE}: {_describe(exc)}") from None
    for key, fw in frameworks.items():
        if fw.catalog_version != crosswalk.catalog_version:
            raise CatalogError(f"{FRAMEWORK_FILES[key]}: catalog_version {fw.catalog_version} does not match "
                               f"{CROSSWALK_FILE} ({crosswalk.catalog_version})")
    return Catalog(root, frameworks, crosswalk, digest.hexdigest())


@functools.cache
def _cached(directory: Path) -> Catalog:
    return read_catalog(directory)


def load_catalog(directory: str | Path | None = None) -> Catalog:
    """The catalog, read once per process and directory."""
    root = Path(directory).resolve() if directory is not None else CATALOG_DIR
    return _cached(root)


load_catalog.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]


def resolve_framework(slug_or_key: str, catalog: Catalog | None = None) -> Framework:
    """Framework for a URL slug, alias or key (``soc2``, ``pci-dss``, ``cmmc-l2``, ``fedramp``, ``ISO27001`` ...)."""
    return (catalog or load_catalog()).resolve_framework(slug_or_key)
