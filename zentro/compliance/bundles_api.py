"""Evidence bundles API: list, create (owner/admin, optional webhook delivery), one bundle with a fresh
verification, download, the scheduled (cron) entrypoint, the signing public key, and the assessor
workbook. Session or API key (scope ``compliance:read|write``); the cron route takes its bearer secret."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint, Response, jsonify, send_file, url_for
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from zentro.audit.service import Actor
from zentro.compliance import bundles, signing
from zentro.compliance.models import EvidenceBundle
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError, not_found
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route
from zentro.platform.storage import StorageError

bp = Blueprint("compliance_bundles", __name__, url_prefix="/api/governance/compliance")
TAGS = ("Compliance: evidence bundles",)
COMMON = {"resource": "compliance", "tags": TAGS}
MAX_ID = 2_147_483_647
CRON_ACTOR = Actor("system", "", "scheduled bundle (cron)")

Window = Literal["7d", "30d", "90d", "365d"]


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


PeriodDays = Annotated[int, Field(ge=1, le=bundles.MAX_PERIOD_DAYS), BeforeValidator(_integral)]
ONE_OF_WINDOW = [
    {"required": ["window"], "not": {"required": ["periodDays"]}},
    {"required": ["periodDays"], "not": {"required": ["window"]}},
]


def _schema_extra(schema: dict) -> None:
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]
    schema["oneOf"] = ONE_OF_WINDOW


class _WindowBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_schema_extra)
    window: Window = Field(None, description="7d, 30d, 90d or 365d. Send exactly one of window and periodDays.")
    periodDays: PeriodDays = Field(None, description="1–730 days. Send exactly one of window and periodDays.")
    deliver: bool = Field(False, description="Also POST the bundle's metadata and download URL to the organisation's "
                                             "bundle webhook; the outcome is recorded on the bundle.")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.window is None) == (self.periodDays is None):
            raise ValueError("send exactly one of window and periodDays")
        return self

    @property
    def days(self) -> int:
        return bundles.window_days(self.window if self.window is not None else self.periodDays)


class BundleCreateIn(_WindowBody):
    """Exactly one of window / periodDays."""


class ScheduledBundleIn(_WindowBody):
    """The org to bundle, and exactly one of window / periodDays."""

    orgId: Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral)] = Field(
        description="The organisation's id (unknown: 404).")


class WorkbookQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    periodDays: int = Field(90, ge=1, le=bundles.MAX_PERIOD_DAYS, description="Evidence window in days, 1–730.")


# --- response models ----------------------------------------------------------------------------------

class BundleWindowOut(BaseModel):
    start: str
    end: str
    days: int


class BundleWebhookOut(BaseModel):
    url: str
    status: Literal["", "delivered", "failed", "not_configured"]
    detail: str


class BundleOut(BaseModel):
    id: int
    seq: int = Field(description="Per organisation, 1, 2, 3…; each bundle's manifest names the previous one's hash.")
    kind: Literal["evidence", "workbook"]
    window: BundleWindowOut
    created_at: str
    created_by: str
    size_bytes: int
    file_count: int
    audit_event_count: int
    zip_sha256: str
    manifest_sha256: str
    prev_manifest_sha256: str
    key_id: str
    signature: str
    webhook: BundleWebhookOut
    download_url: str


class BundlePage(BaseModel):
    data: list[BundleOut]
    next_cursor: str | None


class BundleProblemOut(BaseModel):
    kind: Literal["changed", "missing", "added", "duplicate", "bad_signature", "wrong_key", "manifest_altered",
                  "chain_broken", "unreadable"]
    path: str
    detail: str


class BundleVerificationOut(BaseModel):
    ok: bool
    problems: list[BundleProblemOut]
    manifest_sha256: str
    seq: int | None
    key_id: str
    signer_key_id: str
    trusted_key_id: str
    files_checked: int
    chain_checked: bool
    notes: list[str]


class BundleManifestFileOut(BaseModel):
    path: str
    sha256: str
    size: int


class BundlePreviousOut(BaseModel):
    id: int
    seq: int
    manifest_sha256: str


class BundleDetailOut(BundleOut):
    files: list[BundleManifestFileOut]
    previous: BundlePreviousOut | None
    verification: BundleVerificationOut


# --- helpers --------------------------------------------------------------------------------------------

def _download_url(b: EvidenceBundle, external: bool = False) -> str:
    return url_for("compliance_bundles.download_bundle", bundle_id=b.id, _external=external)


def bundle_out(b: EvidenceBundle) -> dict:
    return {**bundles.bundle_json(b), "download_url": _download_url(b)}


def _filename(b: EvidenceBundle, slug: str) -> str:
    return f"zentro-{slug}-{b.kind}-{b.seq:06d}.zip"


def _send(b: EvidenceBundle, slug: str):
    try:
        fh = bundles.open_stored(b)
    except StorageError:
        raise ApiError(500, f"The stored file of bundle #{b.seq} is missing from the artifact store.") from None
    return send_file(fh, mimetype="application/zip", as_attachment=True, download_name=_filename(b, slug),
                     max_age=0, etag=b.zip_sha256)


def _created(org_id: int, row: EvidenceBundle, deliver: bool, actor: Actor):
    if deliver:
        row = bundles.deliver_bundle(org_id, row.id, _download_url(row, external=True), actor)
    return jsonify(bundle_out(row)), 201


def detail_json(b: EvidenceBundle) -> dict:
    report = bundles.verify_stored(b)
    prev = bundles.previous_of(b)
    files = bundles.manifest_files(report.manifest) if report.manifest else None
    return {**bundle_out(b),
            "files": [{"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in files or []],
            "previous": {"id": prev.id, "seq": prev.seq, "manifest_sha256": prev.manifest_sha256} if prev else None,
            "verification": report.as_dict()}


# --- routes ----------------------------------------------------------------------------------------------

@api_route(bp, "/bundles", methods=("GET",), query=PageQuery, response=BundlePage,
           summary="The organisation's evidence bundles and workbooks, newest first.", **COMMON)
def list_bundles(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(bundles.bundles_query(p.org.id), EvidenceBundle.id, query)
    return jsonify(data=[bundle_out(b) for b in rows], next_cursor=cursor)


@api_route(bp, "/bundles", methods=("POST",), body=BundleCreateIn, response=BundleOut, status=201, min_role="admin",
           summary="Create the next evidence bundle (owner/admin): the window's audit rows, accepted policies and the "
                   "audit-chain verification in a ZIP whose manifest lists every file's SHA-256, signed with Ed25519 "
                   "and chained to the previous bundle. Body: exactly one of window / periodDays; deliver: true also "
                   "posts it to the organisation's bundle webhook.", **COMMON)
def create_bundle(body: BundleCreateIn):
    p = current_principal()
    row = bundles.create_bundle(p.org.id, p.actor, body.days)
    return _created(p.org.id, row, body.deliver, p.actor)


@api_route(bp, "/bundles/public-key", methods=("GET",), response="pem",
           summary="The Ed25519 public key (PEM) that verifies bundle manifests, for offline verification "
                   "(X-Key-Id: its key id).", **COMMON)
def public_key():
    pem = signing.public_key_pem()
    kid = signing.key_id()
    return Response(pem, mimetype="application/x-pem-file", headers={
        "Content-Disposition": f'attachment; filename="zentro-bundle-key-{kid}.pem"', "X-Key-Id": kid})


@api_route(bp, "/bundles/<int:bundle_id>", methods=("GET",), response=BundleDetailOut, tenant_model=EvidenceBundle,
           summary="One bundle: its metadata, the manifest's files, and a fresh verification of the stored ZIP "
                   "(hashes, signature, recorded manifest, link to the previous bundle).", **COMMON)
def get_bundle(bundle_id: int):
    p = current_principal()
    return jsonify(detail_json(bundles.get_bundle(p.org.id, bundle_id)))


@api_route(bp, "/bundles/<int:bundle_id>/download", methods=("GET",), response="zip", tenant_model=EvidenceBundle,
           summary="The bundle's ZIP (application/zip, as an attachment).", **COMMON)
def download_bundle(bundle_id: int):
    p = current_principal()
    return _send(bundles.get_bundle(p.org.id, bundle_id), p.org.slug)


@api_route(bp, "/bundles/scheduled", methods=("POST",), body=ScheduledBundleIn, response=BundleOut, status=201,
           auth=("cron",), cron_secret="ZENTRO_BUNDLE_CRON_SECRET", idempotent=False,
           summary="Scheduled bundle for one organisation (Authorization: Bearer ZENTRO_BUNDLE_CRON_SECRET; unset "
                   "secret: 404). Unknown orgId: 404.", tags=TAGS)
def scheduled_bundle(body: ScheduledBundleIn):
    from zentro.accounts.models import Org

    if db.session.get(Org, body.orgId) is None:
        raise not_found("Organisation")
    row = bundles.create_bundle(body.orgId, CRON_ACTOR, body.days)
    return _created(body.orgId, row, body.deliver, CRON_ACTOR)


@api_route(bp, "/workbook", methods=("GET",), query=WorkbookQuery, response="zip",
           summary="The unified assessor workbook ZIP: the evidence pack, the crosswalk, every framework assessment "
                   "(csv and json), a README, the public key and the signed manifest. Each download is kept as a "
                   "bundle of kind workbook, in the organisation's chain.", **COMMON)
def workbook(query: WorkbookQuery):
    p = current_principal()
    row = bundles.create_workbook(p.org.id, p.actor, query.periodDays)
    return _send(row, p.org.slug)
