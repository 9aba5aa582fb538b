"""Framework catalogs, the crosswalk and their loader: counts against the published frameworks, crosswalk
coverage, strict validation of broken catalogs, alias resolution and the content hash."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from zentro.compliance.catalog import (
    CATALOG_DIR,
    CROSSWALK_FILE,
    FRAMEWORK_FILES,
    FRAMEWORKS,
    Catalog,
    CatalogError,
    load_catalog,
    read_catalog,
    resolve_framework,
)

REPO = Path(__file__).resolve().parents[2]

# Tags the app already writes into audit events (incidents, RCA, reliability, accounts, audit).
EXISTING_TAGS = [
    "SOC2:CC6.1", "SOC2:CC6.2", "SOC2:CC7.1", "SOC2:CC7.2", "SOC2:CC7.3", "SOC2:CC7.4", "SOC2:CC7.5", "SOC2:CC8.1",
    "ISO27001:A.5.9", "ISO27001:A.5.17", "ISO27001:A.5.18", "ISO27001:A.5.24", "ISO27001:A.5.26",
    "ISO27001:A.5.27", "ISO27001:A.5.33", "ISO27001:A.8.5", "ISO27001:A.8.8", "ISO27001:A.8.16", "ISO27001:A.8.32",
]


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


@pytest.fixture
def catalog_copy(tmp_path) -> Path:
    """A writable copy of the shipped catalog directory."""
    target = tmp_path / "catalogs"
    shutil.copytree(CATALOG_DIR, target)
    return target


def _edit(directory: Path, name: str, change) -> None:
    path = directory / name
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


def _ids(cat: Catalog, key: str) -> list[str]:
    return [c.id for c in cat.framework(key).controls]


def _family_counts(cat: Catalog, key: str) -> dict[str, int]:
    return dict(Counter(c.family for c in cat.framework(key).controls))


# ------------------------------------------------------------------ schema of every file


def test_every_framework_file_loads_with_provenance(cat):
    assert tuple(cat.frameworks) == FRAMEWORKS
    assert set(FRAMEWORK_FILES) == set(FRAMEWORKS)
    for key in FRAMEWORKS:
        fw = cat.framework(key)
        assert fw.key == key
        assert fw.catalog_version == cat.catalog_version == 1
        assert fw.name.strip() and fw.version.strip()
        for field in ("source", "licence", "coverage"):
            assert len(getattr(fw, field)) > 40, (key, field)
        assert fw.source_url.startswith("https://"), key
        assert "weight" in fw.coverage.lower() and "freshness" in fw.coverage.lower(), key
        family_ids = {f.id for f in fw.families}
        for c in fw.controls:
            assert c.family in family_ids
            assert c.weight > 0 and c.weight <= 2.0
            assert c.freshness_days in (30, 90, 365), c.tag
            assert c.tag == f"{key}:{c.id}"
            assert 0 < len(c.title) <= 90, c.tag
            assert len(c.tag) <= 60, c.tag  # control columns are String(60)


def test_shipped_files_are_valid_json_with_no_unknown_framework_files():
    names = {p.name for p in CATALOG_DIR.glob("*.json")}
    assert names == {*FRAMEWORK_FILES.values(), CROSSWALK_FILE}
    for name in names:
        json.loads((CATALOG_DIR / name).read_text(encoding="utf-8"))


def test_weights_single_out_operational_evidence(cat):
    soc2 = cat.framework("SOC2")
    assert soc2.control("CC7.3").weight > soc2.control("CC1.1").weight
    assert soc2.control("CC8.1").weight > 1.0 and soc2.control("CC6.1").weight > 1.0
    assert soc2.control("CC7.2").freshness_days == 30
    assert soc2.control("CC5.3").freshness_days == 365
    assert cat.control("ISO27001:A.5.26").freshness_days == 30
    assert cat.control("ISO27001:A.5.1").freshness_days == 365


def test_control_extras_live_in_attrs(cat):
    assert cat.control("CISV8:1.1").attrs == {"ig": [1, 2, 3]}
    assert cat.control("NIST800171:3.1.1").attrs["points"] == 5
    assert cat.control("NISTCSF:GV.OC-01").attrs["category"] == "GV.OC"
    assert cat.control("NIST80053:AC-2(1)").attrs == {"baseline": "moderate", "parent": "AC-2"}
    assert cat.control("NIST80053:AC-2").attrs == {"baseline": "moderate"}
    hipaa = cat.control("HIPAA:164.308(a)(1)(ii)(A)").attrs
    assert hipaa["required"] is True and hipaa["section"] == "164.308(a)(1)"


# ------------------------------------------------------------------ exact counts


def test_soc2_has_common_and_additional_criteria(cat):
    fw = cat.framework("SOC2")
    assert [f.id for f in fw.families] == [f"CC{i}" for i in range(1, 10)] + ["A1", "C1", "PI1"] + [
        f"P{i}" for i in range(1, 9)]
    counts = _family_counts(cat, "SOC2")
    assert [counts[f"CC{i}"] for i in range(1, 10)] == [5, 3, 4, 2, 3, 8, 5, 1, 2]
    assert (counts["A1"], counts["C1"], counts["PI1"]) == (3, 2, 5)
    assert sum(counts[f"P{i}"] for i in range(1, 9)) == 18
    assert len(fw.controls) == 61
    assert {c.attrs["tsc_category"] for c in fw.controls} == {
        "security", "availability", "confidentiality", "processing_integrity", "privacy"}


def test_iso27001_annex_a_has_93_controls_in_four_themes(cat):
    fw = cat.framework("ISO27001")
    assert len(fw.controls) == 93
    assert [f.id for f in fw.families] == ["A.5", "A.6", "A.7", "A.8"]
    assert _family_counts(cat, "ISO27001") == {"A.5": 37, "A.6": 8, "A.7": 14, "A.8": 34}
    expected = [f"A.{theme}.{n}" for theme, size in ((5, 37), (6, 8), (7, 14), (8, 34)) for n in range(1, size + 1)]
    assert _ids(cat, "ISO27001") == expected


def test_pci_dss_requirements_and_sub_requirements(cat):
    assert [f.id for f in cat.framework("PCIDSS").families] == [str(i) for i in range(1, 13)]
    sizes = {"1": 5, "2": 3, "3": 7, "4": 2, "5": 4, "6": 5, "7": 3, "8": 6, "9": 5, "10": 7, "11": 6, "12": 10}
    assert _family_counts(cat, "PCIDSS") == sizes
    assert _ids(cat, "PCIDSS") == [f"{r}.{s}" for r, n in sizes.items() for s in range(1, n + 1)]


def test_hipaa_safeguards_with_required_and_addressable(cat):
    fw = cat.framework("HIPAA")
    assert [f.id for f in fw.families] == ["164.308", "164.310", "164.312"]
    ids = set(_ids(cat, "HIPAA"))
    for standard in ("164.308(a)(1)(i)", "164.308(a)(2)", "164.308(a)(8)", "164.308(b)(1)", "164.310(a)(1)",
                     "164.310(b)", "164.310(c)", "164.310(d)(1)", "164.312(a)(1)", "164.312(b)",
                     "164.312(c)(1)", "164.312(d)", "164.312(e)(1)"):
        assert standard in ids
        assert cat.control(f"HIPAA:{standard}").attrs["kind"] == "standard"
    required = {c.id: c.attrs["required"] for c in fw.controls}
    assert required["164.308(a)(1)(ii)(A)"] is True  # risk analysis
    assert required["164.308(a)(7)(ii)(A)"] is True  # data backup plan
    assert required["164.312(a)(2)(iv)"] is False  # encryption at rest is addressable
    assert required["164.312(e)(2)(ii)"] is False  # transmission encryption is addressable
    assert required["164.312(a)(2)(i)"] is True  # unique user identification
    kinds = Counter((c.attrs["kind"], c.attrs["required"]) for c in fw.controls)
    # 18 standards; 14 required and 22 addressable implementation specifications
    assert kinds == {("standard", True): 18, ("implementation_specification", True): 14,
                     ("implementation_specification", False): 22}
    assert cat.control("HIPAA:164.310(d)(2)(i)").attrs["section"] == "164.310(d)(1)"


def test_nist_csf_functions_categories_subcategories(cat):
    fw = cat.framework("NISTCSF")
    assert [f.id for f in fw.families] == ["GV", "ID", "PR", "DE", "RS", "RC"]
    assert len(fw.controls) == 106
    categories = {c.attrs["category"] for c in fw.controls}
    assert len(categories) == 22
    assert all(c.id.startswith(c.attrs["category"] + "-") and c.attrs["category"].startswith(c.family + ".")
               for c in fw.controls)
    assert _ids(cat, "NISTCSF")[0] == "GV.OC-01" and _ids(cat, "NISTCSF")[-1] == "RC.CO-04"
    assert _family_counts(cat, "NISTCSF") == {"GV": 31, "ID": 21, "PR": 22, "DE": 11, "RS": 13, "RC": 8}


def test_cis_v8_safeguards_and_implementation_groups(cat):
    fw = cat.framework("CISV8")
    assert [f.id for f in fw.families] == [str(i) for i in range(1, 19)]
    assert len(fw.controls) == 153
    igs = [tuple(c.attrs["ig"]) for c in fw.controls]
    assert set(igs) == {(1, 2, 3), (2, 3), (3,)}
    assert sum(1 in ig for ig in igs) == 56
    assert sum(2 in ig for ig in igs) == 130
    assert sum(3 in ig for ig in igs) == 153
    assert _ids(cat, "CISV8")[-1] == "18.5"
    assert len(max((c.title for c in fw.controls), key=len)) <= 45  # CC BY-NC-ND: very short labels only


def test_nist_800_171_requirements_and_sprs_points(cat):
    fw = cat.framework("NIST800171")
    assert len(fw.controls) == 110
    assert len(fw.families) == 14
    assert list(_family_counts(cat, "NIST800171").values()) == [22, 3, 9, 9, 11, 3, 6, 9, 2, 6, 3, 4, 16, 7]
    points = {c.id: c.attrs["points"] for c in fw.controls}
    # DoD Assessment Methodology v1.2.1: scores run from 110 down to -203, i.e. 313 points of deductions.
    assert sum(points.values()) == 313
    assert set(points.values()) == {0, 1, 3, 5}
    assert [cid for cid, p in points.items() if p == 0] == ["3.12.4"]
    assert Counter(points.values()) == Counter({5: 44, 3: 14, 1: 51, 0: 1})
    assert points["3.5.3"] == 5 and points["3.13.11"] == 5 and points["3.1.5"] == 3 and points["3.1.3"] == 1
    unmet = {"3.5.3", "3.13.11", "3.1.5"}
    assert 110 - sum(points[c] for c in unmet) == 97


def test_gdpr_article_32_and_labelled_supporting_measures(cat):
    fw = cat.framework("GDPR")
    art32 = [c.id for c in fw.controls if c.family == "ART32"]
    assert art32 == ["32(1)(a)", "32(1)(b)", "32(1)(c)", "32(1)(d)", "32(2)", "32(4)"]
    for c in fw.controls:
        assert c.attrs["supporting"] is (c.family == "SUPPORT")
        assert c.attrs["article"] == c.id.split("(")[0]
    assert {c.attrs["article"] for c in fw.controls if c.attrs["supporting"]} == {"5", "25", "28", "33"}


def test_nist_800_53_fedramp_moderate_baseline(cat):
    fw = cat.framework("NIST80053")
    assert [f.id for f in fw.families] == ["AC", "AT", "AU", "CA", "CM", "CP", "IA", "IR", "MA", "MP", "PE", "PL",
                                           "PS", "RA", "SA", "SC", "SI", "SR"]
    assert len(fw.controls) == 323
    ids = set(_ids(cat, "NIST80053"))
    bases = [c for c in fw.controls if "parent" not in c.attrs]
    enhancements = [c for c in fw.controls if "parent" in c.attrs]
    assert (len(bases), len(enhancements)) == (181, 142)
    for c in enhancements:
        assert c.attrs["parent"] in ids and c.id.startswith(c.attrs["parent"] + "(") and c.family == c.id[:2]
    for c in fw.controls:
        assert c.attrs["baseline"] == "moderate"
    # every family's policy control and a few well-known moderate selections
    assert {f"{f.id}-1" for f in fw.families} <= ids
    assert {"AC-2(12)", "AU-6(3)", "CM-7(5)", "IA-2(12)", "IR-4(1)", "RA-5(11)", "SC-7(7)", "SI-4(23)"} <= ids
    assert "AC-2(11)" not in ids and "PM-1" not in ids  # high-only / not in the FedRAMP baseline


# ------------------------------------------------------------------ crosswalk


def test_soc2_and_iso27001_map_to_each_other_completely(cat):
    for tag in cat.tags_for("SOC2"):
        assert any(t.startswith("ISO27001:") for t, _ in cat.neighbours(tag)), f"{tag} has no ISO 27001 mapping"
    for tag in cat.tags_for("ISO27001"):
        assert any(t.startswith("SOC2:") for t, _ in cat.neighbours(tag)), f"{tag} has no SOC 2 mapping"


@pytest.mark.parametrize("key", [k for k in FRAMEWORKS if k not in ("SOC2", "ISO27001")])
def test_every_other_framework_control_reaches_soc2_or_iso(cat, key):
    orphans = [tag for tag in cat.tags_for(key)
               if not any(t.startswith(("SOC2:", "ISO27001:")) for t, _ in cat.neighbours(tag))]
    assert orphans == []


@pytest.mark.parametrize("tag", EXISTING_TAGS)
def test_existing_tags_are_in_the_catalog_and_mapped(cat, tag):
    assert cat.has(tag)
    other = "ISO27001:" if tag.startswith("SOC2:") else "SOC2:"
    assert any(t.startswith(other) for t, _ in cat.neighbours(tag))


@pytest.mark.parametrize("soc2,iso", [
    ("CC6.1", "A.8.5"), ("CC6.1", "A.5.15"), ("CC6.1", "A.5.9"), ("CC6.2", "A.5.16"), ("CC6.2", "A.5.17"),
    ("CC6.3", "A.5.18"), ("CC7.1", "A.8.8"), ("CC7.2", "A.8.16"), ("CC7.3", "A.5.25"), ("CC7.3", "A.5.24"),
    ("CC7.4", "A.5.26"), ("CC7.5", "A.5.27"), ("CC8.1", "A.8.32"), ("C1.1", "A.5.33"),
])
def test_existing_tag_pairs_map_sensibly(cat, soc2, iso):
    assert f"ISO27001:{iso}" in cat.equivalents(f"SOC2:{soc2}")
    assert f"SOC2:{soc2}" in cat.equivalents(f"ISO27001:{iso}")


def test_full_edges_where_controls_ask_for_the_same_thing(cat):
    strength = dict(cat.neighbours("SOC2:CC8.1"))
    assert strength["ISO27001:A.8.32"] == "full"
    assert dict(cat.neighbours("SOC2:CC7.4"))["ISO27001:A.5.26"] == "full"
    assert dict(cat.neighbours("NIST80053:IR-4"))["ISO27001:A.5.26"] == "full"
    # enhancements inherit their base control's mapping, but only as partial evidence
    assert dict(cat.neighbours("NIST80053:IR-4(1)"))["ISO27001:A.5.26"] == "partial"


def test_tags_written_by_the_app_are_all_known(cat):
    """Every literal control tag in the application source resolves, so no event carries a dead tag."""
    pattern = re.compile(r"[\"'](%s):([A-Za-z0-9.()\-]+)[\"']" % "|".join(FRAMEWORKS))
    found = set()
    for path in (REPO / "zentro").rglob("*.py"):
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            found.add(f"{m.group(1)}:{m.group(2)}")
    assert {"SOC2:CC7.4", "ISO27001:A.5.26", "SOC2:CC8.1"} <= found  # the scan does see the app's tags
    assert cat.unknown_tags(sorted(found)) == []


def test_neighbours_are_undirected(cat):
    for edge in cat.crosswalk.edges:
        assert (edge.to, edge.strength) in cat.neighbours(edge.from_)
        assert (edge.from_, edge.strength) in cat.neighbours(edge.to)


def test_equivalents_follow_one_hop_only(cat):
    tag = "SOC2:CC7.4"
    direct = {t for t, _ in cat.neighbours(tag)}
    assert cat.equivalents(tag) == {tag} | direct
    two_hops = {t2 for t in direct for t2, _ in cat.neighbours(t)} - direct - {tag}
    assert two_hops, "expected controls two hops away"
    assert not (two_hops & cat.equivalents(tag))
    assert "NIST80053:MP-6" not in cat.equivalents("SOC2:CC6.1")  # media sanitisation is not access control


# ------------------------------------------------------------------ lookups and aliases


@pytest.mark.parametrize("slug,key", [
    ("soc2", "SOC2"), ("SOC2", "SOC2"), ("iso27001", "ISO27001"), ("pci-dss", "PCIDSS"), ("hipaa", "HIPAA"),
    ("nist-csf", "NISTCSF"), ("cis-v8", "CISV8"), ("cmmc-l2", "NIST800171"), ("nist-800-171", "NIST800171"),
    ("gdpr-art32", "GDPR"), ("fedramp", "NIST80053"), ("nist-800-53", "NIST80053"), (" Fedramp ", "NIST80053"),
])
def test_resolve_framework_aliases(cat, slug, key):
    assert resolve_framework(slug).key == key
    assert cat.resolve_framework(slug) is cat.framework(key)


@pytest.mark.parametrize("bad", ["soc3", "", "SOC2:CC6.1", "pci dss", "iso-27002", None, 42])
def test_resolve_framework_rejects_unknown(bad):
    with pytest.raises(CatalogError, match="unknown framework"):
        resolve_framework(bad)


def test_slugs_round_trip(cat):
    for key in FRAMEWORKS:
        assert resolve_framework(cat.framework(key).slug).key == key


def test_framework_and_control_lookup_errors(cat):
    with pytest.raises(CatalogError, match="unknown framework 'NOPE'"):
        cat.framework("NOPE")
    with pytest.raises(KeyError):  # also a KeyError for dict-style callers
        cat.framework("NOPE")
    assert cat.control("SOC2:CC6.1").title
    with pytest.raises(CatalogError, match="unknown control 'SOC2:CC6.9'"):
        cat.control("SOC2:CC6.9")
    with pytest.raises(CatalogError, match="unknown framework 'SOC3'"):
        cat.control("SOC3:CC6.1")
    with pytest.raises(CatalogError, match="not of the form"):
        cat.control("CC6.1")
    with pytest.raises(CatalogError):
        cat.neighbours("ISO27001:A.9.1")
    with pytest.raises(CatalogError):
        cat.tags_for("fedramp")  # tags_for takes keys; slugs go through resolve_framework
    assert cat.unknown_tags(["SOC2:CC6.1", "SOC2:CC6.9"]) == ["SOC2:CC6.9"]


def test_all_tags_and_tags_for_in_display_order(cat):
    tags = cat.all_tags()
    assert len(tags) == len(set(tags)) == sum(len(cat.framework(k).controls) for k in FRAMEWORKS)
    assert tags[0] == "SOC2:CC1.1" and tags[-1] == "NIST80053:SR-12"
    assert cat.tags_for("ISO27001")[:2] == ["ISO27001:A.5.1", "ISO27001:A.5.2"]
    assert cat.version["catalog_version"] == 1 and cat.version["frameworks"]["PCIDSS"] == "4.0.1"
    assert cat.version["content_hash"] == cat.content_hash()


# ------------------------------------------------------------------ loading, caching, hashing


def test_load_catalog_is_cached():
    # (load time is not asserted here: timings belong in bench/, tests assert behaviour)
    assert load_catalog() is load_catalog()
    assert read_catalog() is not load_catalog()


def test_content_hash_is_stable_and_tracks_changes(catalog_copy):
    shipped = read_catalog().content_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", shipped)
    assert read_catalog(catalog_copy).content_hash() == shipped
    # re-serialising with other whitespace and key order is not a change
    for name in [*FRAMEWORK_FILES.values(), CROSSWALK_FILE]:
        doc = json.loads((catalog_copy / name).read_text(encoding="utf-8"))
        (catalog_copy / name).write_text(json.dumps(doc, indent=7, sort_keys=True), encoding="utf-8")
    assert read_catalog(catalog_copy).content_hash() == shipped

    _edit(catalog_copy, "soc2.json", lambda d: d["controls"][0].update(title="Integrity and ethics"))
    changed = read_catalog(catalog_copy).content_hash()
    assert changed != shipped
    _edit(catalog_copy, CROSSWALK_FILE, lambda d: d["edges"][0].update(strength="full"))
    assert read_catalog(catalog_copy).content_hash() not in (shipped, changed)


def test_load_catalog_accepts_a_directory(catalog_copy):
    _edit(catalog_copy, "gdpr_art32.json", lambda d: d["controls"][0].update(title="Encrypt personal data"))
    loaded = load_catalog(catalog_copy)
    assert loaded.control("GDPR:32(1)(a)").title == "Encrypt personal data"
    assert load_catalog(str(catalog_copy)) is loaded
    assert load_catalog().control("GDPR:32(1)(a)").title != "Encrypt personal data"


def _dup_control(d):
    d["controls"].append(dict(d["controls"][3]))


def _bad_family(d):
    d["controls"][1]["family"] = "CC99"


def _zero_weight(d):
    d["controls"][2]["weight"] = 0


def _negative_weight(d):
    d["controls"][2]["weight"] = -1.5


def _string_weight(d):
    d["controls"][2]["weight"] = "heavy"


def _no_title(d):
    del d["controls"][0]["title"]


def _colon_id(d):
    d["controls"][0]["id"] = "CC:1.1"


def _zero_freshness(d):
    d["controls"][0]["freshness_days"] = 0


def _dup_family(d):
    d["families"].append({"id": "CC1", "title": "Again"})


def _empty_family(d):
    d["families"].append({"id": "CC10", "title": "Nothing here"})


def _wrong_key(d):
    d["key"] = "SOC3"


def _unknown_field(d):
    d["owner"] = "someone"


def _reserved_attr(d):
    d["controls"][0]["attrs"] = {}


def _old_version(d):
    d["catalog_version"] = 2


@pytest.mark.parametrize("change,message", [
    (_dup_control, r"soc2\.json: duplicate control id 'CC1\.4'"),
    (_bad_family, r"soc2\.json: control 'CC1\.2' points at missing family 'CC99'"),
    (_zero_weight, r"soc2\.json: control 'CC1\.3': weight: Input should be greater than 0"),
    (_negative_weight, r"soc2\.json: control 'CC1\.3': weight"),
    (_string_weight, r"soc2\.json: control 'CC1\.3': weight"),
    (_no_title, r"soc2\.json: control 'CC1\.1': title: Field required"),
    (_colon_id, r"soc2\.json: control 'CC:1\.1': id"),
    (_zero_freshness, r"soc2\.json: control 'CC1\.1': freshness_days"),
    (_dup_family, r"soc2\.json: duplicate family id 'CC1'"),
    (_empty_family, r"soc2\.json: family 'CC10' has no controls"),
    (_wrong_key, r"soc2\.json: key must be 'SOC2', found 'SOC3'"),
    (_unknown_field, r"soc2\.json: owner: Extra inputs are not permitted"),
    (_reserved_attr, r"soc2\.json: control 'CC1\.1': 'attrs' and 'framework' are reserved"),
    (_old_version, r"soc2\.json: catalog_version 2 does not match crosswalk\.json"),
])
def test_broken_framework_file_is_rejected(catalog_copy, change, message):
    _edit(catalog_copy, "soc2.json", change)
    with pytest.raises(CatalogError, match=message):
        read_catalog(catalog_copy)


def _unknown_target(d):
    d["edges"].append({"from": "PCIDSS:1.2", "to": "ISO27001:A.9.9", "strength": "partial"})


def _unknown_framework_edge(d):
    d["edges"].append({"from": "SOC3:CC1.1", "to": "ISO27001:A.5.1", "strength": "partial"})


def _reverse_duplicate(d):
    first = d["edges"][0]
    d["edges"].append({"from": first["to"], "to": first["from"], "strength": "full"})


def _same_framework(d):
    d["edges"].append({"from": "SOC2:CC1.1", "to": "SOC2:CC1.2", "strength": "partial"})


def _bad_strength(d):
    d["edges"][5]["strength"] = "strong"


def _untagged(d):
    d["edges"][0]["to"] = "A.5.1"


def _edges_not_list(d):
    d["edges"] = {"SOC2:CC1.1": "ISO27001:A.5.1"}


@pytest.mark.parametrize("change,message", [
    (_unknown_target, r"crosswalk\.json: edges\[\d+\] PCIDSS:1\.2 -> ISO27001:A\.9\.9: unknown control 'ISO27001:A\.9\.9'"),
    (_unknown_framework_edge, r"crosswalk\.json: edges\[\d+\] .*unknown control 'SOC3:CC1\.1'"),
    (_reverse_duplicate, r"crosswalk\.json: edges\[\d+\] ISO27001:A\.5\.1 -> SOC2:CC1\.1: duplicate edge"),
    (_same_framework, r"crosswalk\.json: .*two different frameworks"),
    (_bad_strength, r"crosswalk\.json: edges\.5\.strength"),
    (_untagged, r"crosswalk\.json: edges\.0\.to"),
    (_edges_not_list, r"crosswalk\.json: edges"),
])
def test_broken_crosswalk_is_rejected(catalog_copy, change, message):
    _edit(catalog_copy, CROSSWALK_FILE, change)
    with pytest.raises(CatalogError, match=message):
        read_catalog(catalog_copy)


def test_invalid_json_and_missing_files_are_rejected(catalog_copy, tmp_path):
    (catalog_copy / "hipaa.json").write_text('{"key": "HIPAA",', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"hipaa\.json: invalid JSON at line 1"):
        read_catalog(catalog_copy)
    (catalog_copy / "hipaa.json").unlink()
    with pytest.raises(CatalogError, match=r"hipaa\.json: catalog file is missing"):
        read_catalog(catalog_copy)
    (catalog_copy / "pci_dss.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"pci_dss\.json: top level must be an object"):
        read_catalog(catalog_copy)
    with pytest.raises(CatalogError, match="does not exist"):
        read_catalog(tmp_path / "nowhere")
