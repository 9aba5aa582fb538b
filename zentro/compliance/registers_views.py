"""Pages for the compliance registers: the attestation board (filters, assign form, overdue first) and
one attestation (attest with a note and evidence, reject, history); exceptions (list, open, close);
policies (list, create, edit a draft, transitions); vendors (register, add, review) and one vendor
(detail, edit). Forms post with the CSRF token; bad input re-renders the form with the message and
changes nothing; success redirects (post/redirect/get)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.compliance import attestations as att
from zentro.compliance import vendors
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import Attestation, ControlException, Policy, Vendor
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_register_pages", __name__)
PICKER_FRAMEWORKS = ("SOC2", "ISO27001")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPLIT = re.compile(r"[\s,]+")


class FormError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _who():
    p = current_principal()
    return p, p.user.id


def _is_admin() -> bool:
    return current_principal().role.at_least(Role.admin)


def _can_write() -> bool:
    return current_principal().role.at_least(Role.member)


def _errors_of(exc: ApiError) -> dict[str, str]:
    """A service refusal as {field: message}; a refusal about no field goes under "form"."""
    names = [str(e["loc"][0]) for e in (exc.errors or []) if e.get("loc")]
    name = names[0] if names else "form"
    return {name: exc.detail}


def _refused(exc: ApiError) -> bool:
    """A refusal of the input (re-render the form) rather than of the request (raise: 403, 404 of the page's
    own object)."""
    return exc.status in (400, 409) or (exc.status == 404 and bool(exc.errors))


def _form_status(exc: ApiError) -> int:
    return 409 if exc.status == 409 else 400


def _attempt(change: Callable[[], Any], rerender: Callable[[dict, int], Any]) -> tuple[Any, Any]:
    """Run one form's change: (its result, None), or (None, the form re-rendered with the reasons) when the
    input is refused (bad fields 400, conflicts 409). A refusal of the request itself (403, the page's own
    404) propagates."""
    try:
        return change(), None
    except FormError as exc:
        return None, rerender(exc.errors, 400)
    except ApiError as exc:
        if not _refused(exc):
            raise
        return None, rerender(_errors_of(exc), _form_status(exc))


def _date(name: str, required: bool = True) -> dt.datetime | None:
    """A date field (YYYY-MM-DD) as the end of that day in UTC: "due on the 31st" means by its end."""
    raw = request.form.get(name, "").strip()
    if not raw:
        if required:
            raise FormError({name: att.FIELD_HELP.get(name, vendors.VENDOR_HELP.get(name, f"{name}: required."))})
        return None
    try:
        if not _DATE.match(raw):
            raise ValueError
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise FormError({name: f"{name.replace('_', ' ').capitalize()}: a date as YYYY-MM-DD."}) from None
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=dt.timezone.utc)


def _int(name: str, required: bool = True) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw and not required:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise FormError({name: att.FIELD_HELP.get(name, vendors.VENDOR_HELP.get(name, f"{name}: choose one."))})
    return int(raw)


def _text(name: str) -> str:
    return request.form.get(name, "").replace("\r\n", "\n")


def _tags(name: str) -> list[str]:
    return [t for t in _SPLIT.split(request.form.get(name, "").strip()) if t]


def _picker_tags() -> list[dict]:
    catalog = load_catalog()
    return [{"tag": c.tag, "title": c.title} for key in PICKER_FRAMEWORKS for c in catalog.framework(key).controls]


def _member_choices(minimum: Role) -> list[dict]:
    p = current_principal()
    return att.members(p.org.id, minimum)


# --- attestations ---------------------------------------------------------------------------------

def _board_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    state = request.args.get("state", "")
    owner = request.args.get("owner", "")
    owner_id = int(owner) if owner.isdigit() and len(owner) <= 10 else None
    board = att.board(p.org.id, state=state if state in att.STATES else None, owner_id=owner_id)
    return render_template("compliance/attestations.html", board=board, states=att.STATES,
                           filters={"state": state if state in att.STATES else "", "owner": owner_id},
                           owners=_member_choices(Role.member), everyone=_member_choices(Role.viewer),
                           tags=_picker_tags(), form=form or {}, errors=errors or {}, can_assign=_is_admin()), status


@page_route(bp, "/compliance/attestations", summary="Attestation board: owners, due dates, states, evidence counts.")
def attestation_board():
    return _board_page()


@page_route(bp, "/compliance/attestations", methods=("POST",), endpoint="attestation_assign", min_role="admin",
            summary="Assign a control to an owner (owner/admin).")
def attestation_assign():
    p, _ = _who()
    form = {"control": request.form.get("control", "").strip(), "owner_id": request.form.get("owner_id", ""),
            "due_at": request.form.get("due_at", "")}
    row, refused = _attempt(lambda: att.assign(p.org.id, control=form["control"], owner_id=_int("owner_id"),
                                               due_at=_date("due_at"), actor=p.actor),
                            lambda errors, status: _board_page(form, errors, status))
    if refused:
        return refused
    flash(f"{row.control} assigned.", "success")
    return redirect(url_for("compliance_register_pages.attestation_board"))


def _attestation_page(attestation_id: int, form: dict | None = None, errors: dict | None = None, status: int = 200):
    p, user_id = _who()
    row = att.get_attestation(p.org.id, attestation_id)
    now = utcnow()
    data = att.attestation_json(row, now)
    ids = [e["ref"] for e in data["evidence"] if e["kind"] == "audit_event"]
    events = att.audit_events(p.org.id, ids)
    catalog = load_catalog()
    control = catalog.control(row.control) if catalog.has(row.control) else None
    return render_template("compliance/attestations_detail.html", a=data, control=control, events=events,
                           history=att.history(p.org.id, "attestation", row.id),
                           can_attest=_can_write() and (user_id == row.owner_id or _is_admin()),
                           can_reject=_is_admin() and row.status == "attested", form=form or {},
                           errors=errors or {}), status


@page_route(bp, "/compliance/attestations/<int:attestation_id>", tenant_model=Attestation,
            summary="One attestation: attest with a note and evidence, reject, history.")
def attestation_detail(attestation_id: int):
    return _attestation_page(attestation_id)


def _evidence_refs(raw: str) -> list[dict]:
    """One reference a line (or separated by spaces/commas): an audit event id ("123" or "#123") or an
    https:// address."""
    refs = []
    for item in _SPLIT.split(raw.strip()):
        if not item:
            continue
        if re.fullmatch(r"#?\d{1,10}", item):
            refs.append({"kind": "audit_event", "ref": int(item.lstrip("#"))})
        elif item.lower().startswith("https://"):
            refs.append({"kind": "url", "ref": item})
        else:
            raise FormError({"evidence": f"Evidence: {item[:60]!r} is neither an audit event id nor an https:// "
                                         "address."})
    return refs


@page_route(bp, "/compliance/attestations/<int:attestation_id>/attest", methods=("POST",), tenant_model=Attestation,
            summary="Attest a control (its owner or an owner/admin).")
def attestation_attest(attestation_id: int):
    p, user_id = _who()
    form = {"note": _text("note"), "evidence": request.form.get("evidence", "")}
    _, refused = _attempt(lambda: att.attest(p.org.id, attestation_id, user_id=user_id, note=form["note"],
                                             evidence=_evidence_refs(form["evidence"]), actor=p.actor),
                          # (the page loads the attestation: another org's id stays 404)
                          lambda errors, status: _attestation_page(attestation_id, form, errors, status))
    if refused:
        return refused
    flash("Attested.", "success")
    return redirect(url_for("compliance_register_pages.attestation_detail", attestation_id=attestation_id))


@page_route(bp, "/compliance/attestations/<int:attestation_id>/reject", methods=("POST",), tenant_model=Attestation,
            min_role="admin", summary="Reject an attestation (owner/admin).")
def attestation_reject(attestation_id: int):
    p, user_id = _who()
    form = {"reject_note": _text("note")}
    try:
        att.reject(p.org.id, attestation_id, user_id=user_id, note=form["reject_note"], actor=p.actor)
    except ApiError as exc:
        if not _refused(exc):
            raise
        errors = _errors_of(exc)
        if "note" in errors:
            errors = {"reject_note": errors.pop("note")}
        return _attestation_page(attestation_id, form, errors, _form_status(exc))
    flash("Attestation rejected; the owner attests again.", "success")
    return redirect(url_for("compliance_register_pages.attestation_detail", attestation_id=attestation_id))


# --- exceptions -----------------------------------------------------------------------------------

def _exceptions_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    return render_template("compliance/exceptions.html", reg=att.list_exceptions(p.org.id),
                           approvers=_member_choices(Role.admin), tags=_picker_tags(), form=form or {},
                           errors=errors or {}, can_edit=_is_admin()), status


@page_route(bp, "/compliance/exceptions", summary="Control exceptions: open, expired and closed.")
def exception_list():
    return _exceptions_page()


@page_route(bp, "/compliance/exceptions", methods=("POST",), endpoint="exception_open", min_role="admin",
            summary="Open a control exception (owner/admin).")
def exception_open():
    p, user_id = _who()
    form = {k: request.form.get(k, "") for k in ("control", "reason", "compensating_control", "approver_id",
                                                 "expires_at")}
    _, refused = _attempt(
        lambda: att.open_exception(p.org.id, control=form["control"].strip(), reason=_text("reason"),
                                   compensating_control=_text("compensating_control"),
                                   approver_id=_int("approver_id"), expires_at=_date("expires_at"),
                                   user_id=user_id, actor=p.actor),
        lambda errors, status: _exceptions_page(form, errors, status))
    if refused:
        return refused
    flash(f"Exception to {form['control'].strip()} opened.", "success")
    return redirect(url_for("compliance_register_pages.exception_list"))


@page_route(bp, "/compliance/exceptions/<int:exception_id>/close", methods=("POST",), tenant_model=ControlException,
            min_role="admin", summary="Close a control exception (owner/admin).")
def exception_close(exception_id: int):
    p, user_id = _who()
    try:
        row = att.close_exception(p.org.id, exception_id, user_id=user_id, actor=p.actor)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return _exceptions_page(errors={"form": exc.detail}, status=409)
    flash(f"Exception to {row.control} closed.", "success")
    return redirect(url_for("compliance_register_pages.exception_list"))


# --- policies -------------------------------------------------------------------------------------

def _policy_form() -> dict:
    return {"name": request.form.get("name", "").strip(), "description": _text("description"),
            "control_tags": request.form.get("control_tags", ""), "actions": request.form.get("actions", "")}


def _policies_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    return render_template("compliance/policies.html", reg=att.list_policies(p.org.id), tags=_picker_tags(),
                           form=form or {}, errors=errors or {}, can_edit=_can_write(), is_admin=_is_admin()), status


@page_route(bp, "/compliance/policies", summary="Policies: status, control tags, transitions.")
def policy_list():
    return _policies_page()


@page_route(bp, "/compliance/policies", methods=("POST",), endpoint="policy_create", summary="Create a draft policy.")
def policy_create():
    p, _ = _who()
    form = _policy_form()
    row, refused = _attempt(lambda: att.create_policy(p.org.id, name=form["name"], description=form["description"],
                                                      control_tags=_tags("control_tags"), actions=_tags("actions"),
                                                      actor=p.actor),
                            lambda errors, status: _policies_page(form, errors, status))
    if refused:
        return refused
    flash(f"Policy {row.name} created as a draft.", "success")
    return redirect(url_for("compliance_register_pages.policy_detail", policy_id=row.id))


def _policy_page(policy_id: int, form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    row = att.get_policy(p.org.id, policy_id)
    data = att.policy_json(row)
    if form is None:
        form = {"name": row.name, "description": row.description, "control_tags": " ".join(data["control_tags"]),
                "actions": " ".join(data["actions"])}
    catalog = load_catalog()
    titles = {t: catalog.control(t).title for t in data["control_tags"] if catalog.has(t)}
    return render_template("compliance/policies_detail.html", pol=data, titles=titles, tags=_picker_tags(), form=form,
                           errors=errors or {}, history=att.history(p.org.id, "policy", row.id),
                           can_edit=_can_write() and row.status == "draft", can_move=_can_write(),
                           is_admin=_is_admin()), status


@page_route(bp, "/compliance/policies/<int:policy_id>", tenant_model=Policy, summary="One policy: edit, transitions.")
def policy_detail(policy_id: int):
    return _policy_page(policy_id)


@page_route(bp, "/compliance/policies/<int:policy_id>", methods=("POST",), tenant_model=Policy,
            endpoint="policy_edit", summary="Edit a draft policy.")
def policy_edit(policy_id: int):
    p, _ = _who()
    form = _policy_form()
    _, refused = _attempt(lambda: att.update_policy(p.org.id, policy_id, {
        "name": form["name"], "description": form["description"], "control_tags": _tags("control_tags"),
        "actions": _tags("actions")}, actor=p.actor),
        lambda errors, status: _policy_page(policy_id, form, errors, status))
    if refused:
        return refused
    flash("Policy saved.", "success")
    return redirect(url_for("compliance_register_pages.policy_detail", policy_id=policy_id))


@page_route(bp, "/compliance/policies/<int:policy_id>/transition", methods=("POST",), tenant_model=Policy,
            summary="Move a policy to review, accepted, retired or back to draft.")
def policy_transition(policy_id: int):
    p, user_id = _who()
    to = request.form.get("to", "")
    back = request.form.get("back") == "list"
    try:
        row = att.transition_policy(p.org.id, policy_id, to, user_id=user_id, actor=p.actor)
    except ApiError as exc:
        if not _refused(exc):
            raise
        if back:
            return _policies_page(errors={"form": exc.detail}, status=_form_status(exc))
        return _policy_page(policy_id, errors={"form": exc.detail}, status=_form_status(exc))
    flash(f"Policy {row.name} is now {row.status}.", "success")
    if back:
        return redirect(url_for("compliance_register_pages.policy_list"))
    return redirect(url_for("compliance_register_pages.policy_detail", policy_id=policy_id))


# --- vendors --------------------------------------------------------------------------------------

BOOLS = ("baa", "dpa", "handles_phi", "handles_personal_data")


def _vendor_form() -> dict:
    f = request.form
    return {"name": f.get("name", "").strip(), "category": f.get("category", ""), "risk_tier": f.get("risk_tier", ""),
            "owner_id": f.get("owner_id", ""), "website": f.get("website", "").strip(),
            "report_type": f.get("report_type", "none"), "report_expires_at": f.get("report_expires_at", ""),
            "notes": _text("notes"), **{b: f.get(b) == "on" for b in BOOLS}}


def _vendor_values(form: dict) -> dict:
    values = {k: form[k] for k in ("name", "category", "risk_tier", "website", "report_type", "notes", *BOOLS)}
    values["owner_id"] = _int("owner_id", required=False)
    values["report_expires_at"] = _date("report_expires_at", required=False)
    return values


def _choices() -> dict:
    rules = vendors.load_rules()
    return {"categories": [(c, rules.category_label(c)) for c in vendors.CATEGORIES],
            "tiers": [(t, f"{rules.risk_tiers[t].label} (review every {rules.review_days(t)} days)")
                      for t in vendors.VENDOR_TIERS],
            "report_types": [(r, rules.report_label(r)) for r in vendors.REPORT_TYPES],
            "owners": _member_choices(Role.member)}


def _vendors_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    return render_template("compliance/vendors.html", reg=vendors.register(p.org.id), form=form or {},
                           errors=errors or {}, can_edit=_is_admin(), **_choices()), status


@page_route(bp, "/compliance/vendors", summary="Third-party risk register.")
def vendor_list():
    return _vendors_page()


@page_route(bp, "/compliance/vendors", methods=("POST",), endpoint="vendor_add", min_role="admin",
            summary="Add a vendor (owner/admin).")
def vendor_add():
    p, _ = _who()
    form = _vendor_form()
    row, refused = _attempt(lambda: vendors.add(p.org.id, actor=p.actor, **_vendor_values(form)),
                            lambda errors, status: _vendors_page(form, errors, status))
    if refused:
        return refused
    flash(f"Vendor {row.name} added with {len(row.inherited_controls)} inherited controls.", "success")
    return redirect(url_for("compliance_register_pages.vendor_detail", vendor_id=row.id))


def _vendor_page(vendor_id: int, form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    row = vendors.get_vendor(p.org.id, vendor_id)
    data = vendors.vendor_json(row, utcnow())
    if form is None:
        form = {**{k: getattr(row, k) for k in ("name", "category", "risk_tier", "website", "report_type", "notes",
                                                  *BOOLS)},
                "owner_id": row.owner_id or "",
                "report_expires_at": row.report_expires_at.date().isoformat() if row.report_expires_at else ""}
    return render_template("compliance/vendors_detail.html", v=data, form=form, errors=errors or {},
                           history=att.history(p.org.id, "vendor", row.id), can_edit=_is_admin(),
                           **_choices()), status


@page_route(bp, "/compliance/vendors/<int:vendor_id>", tenant_model=Vendor, summary="One vendor: detail and edit.")
def vendor_detail(vendor_id: int):
    return _vendor_page(vendor_id)


@page_route(bp, "/compliance/vendors/<int:vendor_id>", methods=("POST",), tenant_model=Vendor, endpoint="vendor_edit",
            min_role="admin", summary="Edit a vendor (owner/admin).")
def vendor_edit(vendor_id: int):
    p, _ = _who()
    form = _vendor_form()
    def change():
        values = _vendor_values(form)
        stored = vendors.get_vendor(p.org.id, vendor_id).report_expires_at
        if values["report_expires_at"] and stored and values["report_expires_at"].date() == stored.date():
            values["report_expires_at"] = stored  # the form shows dates only: an unchanged date is no change
        return vendors.update(p.org.id, vendor_id, values, actor=p.actor)

    _, refused = _attempt(change, lambda errors, status: _vendor_page(vendor_id, form, errors, status))
    if refused:
        return refused
    flash("Vendor saved; inherited controls and next review recomputed.", "success")
    return redirect(url_for("compliance_register_pages.vendor_detail", vendor_id=vendor_id))


@page_route(bp, "/compliance/vendors/<int:vendor_id>/review", methods=("POST",), tenant_model=Vendor,
            min_role="admin", summary="Record a vendor review (owner/admin).")
def vendor_review(vendor_id: int):
    p, _ = _who()
    note = _text("note")
    try:
        row = vendors.record_review(p.org.id, vendor_id, note=note, actor=p.actor)
    except ApiError as exc:
        if not _refused(exc):
            raise
        return _vendor_page(vendor_id, errors={"review_note": exc.detail}, status=400)
    flash(f"Review of {row.name} recorded; next review {row.next_review_at:%Y-%m-%d}.", "success")
    if request.form.get("back") == "list":
        return redirect(url_for("compliance_register_pages.vendor_list"))
    return redirect(url_for("compliance_register_pages.vendor_detail", vendor_id=vendor_id))
