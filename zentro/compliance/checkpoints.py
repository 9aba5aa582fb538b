"""Audit-season checkpoints (kick-off, fieldwork, evidence freeze, report ...) and the tracked steps of the
obligation consolidation plays.

Checkpoints: name, framework (a catalog framework; slugs such as ``soc2`` or keys such as ``SOC2`` are accepted
and stored as the catalog key), owner (a member of the org, member role or above; optional), due date (at most a
year back and two years ahead) and status ``planned`` | ``done``. ``done_at`` is set by the server when the status
becomes done and cleared when it goes back to planned. Derived state at ``now``: done, overdue (planned and past
due) or planned. Every change is audited with SOC2:CC4.1 / ISO27001:A.5.35 (the audit season is the program's
independent evaluation); creating and changing them is for owners/admins (the routes say so).

Consolidation play steps: ``set_play_step`` records the status (todo, in_progress, done, skipped) of one of the six
steps of a crossover cluster's play (``zentro/compliance/reports/_obligation_views.py``); the cluster must exist
for the org right now (else 404), one row per (org, cluster key, step). Audited with SOC2:CC4.1 / ISO27001:A.5.36.

No Flask globals: every function takes the org id and the audit Actor; lookups are by (org_id, id), a miss is 404.
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from zentro.accounts.models import Role
from zentro.audit.service import Actor, lock_org, record
from zentro.compliance.attestations import (_NAME, Id, UtcDatetime, _commit, _integer_only, _users, bad_input,
                                            check_member, flush_or_conflict, user_json, validated)
from zentro.compliance.catalog import FRAMEWORK_ALIASES, load_catalog
from zentro.compliance.models import CHECKPOINT_STATUSES, PLAY_STEP_STATUSES, AuditCheckpoint, ConsolidationPlayStep
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

CHECKPOINT_TAGS = ("SOC2:CC4.1", "ISO27001:A.5.35")
PLAY_TAGS = ("SOC2:CC4.1", "ISO27001:A.5.36")
STATES = ("planned", "overdue", "done")
MAX_AHEAD = dt.timedelta(days=730)
MAX_BACK = dt.timedelta(days=365)
HELP = {
    "name": "Name: 1–200 characters on one line, not starting or ending with a space.",
    "framework": "Framework: a catalog framework slug or key such as soc2, iso27001, pci-dss or SOC2.",
    "owner_id": "Owner: a member of this organisation (member role or above), or null for nobody.",
    "due_at": "Due: a date at most one year back and two years ahead.",
    "status": "Status: planned or done.",
    "cluster_key": "Cluster: the key of a consolidation cluster (see obligation-crossover).",
    "step": "Step: 1 to 6.",
}


def _framework(value):
    """A framework slug or key (any case) → the catalog key; anything else is a validation error."""
    if not isinstance(value, str):
        raise ValueError("a framework is a string such as soc2")
    try:
        return load_catalog().resolve_framework(value).key
    except KeyError:
        raise ValueError(f"unknown framework {value[:40]!r}; use a slug such as soc2, iso27001 or pci-dss") from None


# Every accepted spelling, as one enum in the OpenAPI document; the before-validator maps it to the key.
FrameworkRef = Annotated[
    enum.Enum("CheckpointFramework", {f"f{i}": v for i, v in enumerate(
        sorted(set(FRAMEWORK_ALIASES) | set(load_catalog().frameworks)))}, type=str),
    BeforeValidator(_framework)]
CheckpointName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NAME)]
ClusterKey = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[!-~]+$")]


class CheckpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    name: CheckpointName = Field(description="e.g. 'SOC 2 fieldwork starts' (1–200 characters, one line).")
    framework: FrameworkRef = Field(description="Catalog framework slug or key (soc2, iso27001, pci-dss, SOC2, ...); "
                                                "stored as the key. Unknown: 400.")
    owner_id: Id | None = Field(None, description="A member of the org (else 404) with member role or above "
                                                  "(a viewer: 409); null for nobody.")
    due_at: UtcDatetime = Field(description="At most one year back and two years ahead (else 400).")


class CheckpointPatchIn(BaseModel):
    """Only the fields present change."""
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    name: CheckpointName = None
    framework: FrameworkRef = None
    owner_id: Id | None = None
    due_at: UtcDatetime = None
    status: Literal["planned", "done"] = Field(None, description="done sets done_at to now; planned clears it.")


class PlayStepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cluster_key: ClusterKey = Field(description="A current consolidation cluster of this org, e.g. "
                                                "'attestation:12~14d' (unknown: 404).")
    step: Annotated[int, Ge(1), Le(6), BeforeValidator(_integer_only)] = Field(
        description="Play step 1-6 (a JSON integer; 2.0 counts, true and \"2\" do not).")
    status: Literal[PLAY_STEP_STATUSES] = Field(description="todo, in_progress, done or skipped.")  # type: ignore[valid-type]


# --- checkpoints ---------------------------------------------------------------------------------------------

def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def state_of(row: AuditCheckpoint, now: dt.datetime) -> str:
    if row.status == "done":
        return "done"
    return "overdue" if _aware(row.due_at) < now else "planned"


def checkpoint_json(row: AuditCheckpoint, now: dt.datetime, users: dict | None = None) -> dict:
    users = users if users is not None else _users([row.owner_id])
    catalog = load_catalog()
    fw = catalog.frameworks.get(row.framework)
    due = _aware(row.due_at)
    state = state_of(row, now)
    return {"id": row.id, "name": row.name, "framework": row.framework, "framework_name": fw.name if fw else "",
            "framework_slug": fw.slug if fw else row.framework.lower(), "owner": user_json(users.get(row.owner_id)),
            "due_at": iso(due), "status": row.status, "state": state,
            "days_left": (due.date() - now.date()).days if state == "planned" else None,
            "days_overdue": (now - due).days if state == "overdue" else 0,
            "done_at": iso(_aware(row.done_at)), "created_at": iso(_aware(row.created_at))}


def list_checkpoints(org_id: int, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    rows = list(db.session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.org_id == org_id)
                                   .order_by(AuditCheckpoint.due_at, AuditCheckpoint.id)))
    users = _users(r.owner_id for r in rows)
    items = [checkpoint_json(r, now, users) for r in rows]
    counts = {s: sum(1 for i in items if i["state"] == s) for s in STATES}
    return {"generated_at": iso(now), "counts": counts, "total": len(items), "checkpoints": items}


def get_checkpoint(org_id: int, checkpoint_id: int) -> AuditCheckpoint:
    row = db.session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.org_id == org_id,
                                                          AuditCheckpoint.id == checkpoint_id))
    if row is None:
        raise not_found("Checkpoint")
    return row


def _check_due(due_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    due_at = due_at.astimezone(dt.timezone.utc)
    if due_at > now + MAX_AHEAD:
        raise bad_input("Due: at most two years ahead.", "due_at")
    if due_at < now - MAX_BACK:
        raise bad_input("Due: at most one year back.", "due_at")
    return due_at


def _values(row: AuditCheckpoint) -> dict:
    return {"name": row.name, "framework": row.framework, "owner_id": row.owner_id, "due_at": iso(_aware(row.due_at)),
            "status": row.status}


def create(org_id: int, *, name: str, framework: str, due_at: dt.datetime, owner_id: int | None = None,
           actor: Actor, now: dt.datetime | None = None) -> AuditCheckpoint:
    now = now or utcnow()
    data = validated(CheckpointIn, {"name": name, "framework": framework, "owner_id": owner_id, "due_at": due_at},
                     HELP)
    due = _check_due(data.due_at, now)
    if data.owner_id is not None:
        check_member(org_id, data.owner_id, "owner_id", Role.member, "Owner")
    row = AuditCheckpoint(org_id=org_id, name=data.name, framework=data.framework, owner_id=data.owner_id,
                          due_at=due, status="planned", done_at=None, created_at=now)
    db.session.add(row)
    db.session.flush()
    record(org_id, "checkpoint.created", actor, target_type="audit_checkpoint", target_id=row.id,
           control_tags=CHECKPOINT_TAGS, now=now, data=_values(row))
    _commit()
    return row


def update(org_id: int, checkpoint_id: int, changes: dict, *, actor: Actor,
           now: dt.datetime | None = None) -> AuditCheckpoint:
    """Change the fields given (CheckpointPatchIn); a no-op records nothing."""
    now = now or utcnow()
    row = get_checkpoint(org_id, checkpoint_id)
    patch = validated(CheckpointPatchIn, changes, HELP)
    given = {k: getattr(patch, k) for k in patch.model_fields_set}
    nulls = [k for k in given if k != "owner_id" and given[k] is None]
    if nulls:
        raise bad_input(f"{HELP[nulls[0]]} (may not be null)", nulls[0])
    if "due_at" in given:
        given["due_at"] = _check_due(given["due_at"], now)
    if given.get("owner_id") is not None:
        check_member(org_id, given["owner_id"], "owner_id", Role.member, "Owner")
    before = _values(row)
    for key, value in given.items():
        if key == "status":
            if value != row.status:
                row.status = value
                row.done_at = now if value == "done" else None
        else:
            setattr(row, key, value)
    after = _values(row)
    changed = {k for k in after if after[k] != before[k]}
    if not changed:
        return row
    action = ("checkpoint.done" if after["status"] == "done" else "checkpoint.reopened") \
        if changed == {"status"} else "checkpoint.updated"
    record(org_id, action, actor, target_type="audit_checkpoint", target_id=row.id, control_tags=CHECKPOINT_TAGS,
           now=now, data={"name": row.name, "from": {k: before[k] for k in sorted(changed)},
                          "to": {k: after[k] for k in sorted(changed)}, "done_at": iso(_aware(row.done_at))})
    _commit()
    return row


def delete(org_id: int, checkpoint_id: int, *, actor: Actor, now: dt.datetime | None = None) -> dict:
    """Delete a checkpoint; answers it as it was."""
    now = now or utcnow()
    row = get_checkpoint(org_id, checkpoint_id)
    out = checkpoint_json(row, now)
    record(org_id, "checkpoint.deleted", actor, target_type="audit_checkpoint", target_id=row.id,
           control_tags=CHECKPOINT_TAGS, now=now, data=_values(row))
    db.session.delete(row)
    _commit()
    return out


# --- consolidation play steps ------------------------------------------------------------------------------

def find_cluster(org_id: int, cluster_key: str, now: dt.datetime):
    """The org's current crossover cluster with this key (formed with the window the key names), else 404."""
    from zentro.compliance import obligations as obl
    from zentro.compliance.reports import _obligation_views as views

    days = views.window_of_key(cluster_key)
    if days is not None:
        items = obl.open_only(obl.load(org_id, now, until=views.horizon(now, views.CLUSTER_HORIZON_WEEKS)[2]))
        for c in views.clusters(items, now, days):
            if c.key == cluster_key:
                return c
    raise ApiError(404, f"No consolidation cluster {cluster_key[:120]!r} in this organisation right now.",
                   errors=[{"loc": ["cluster_key"], "msg": "unknown cluster", "type": "not_found"}])


def play_steps(org_id: int, cluster_key: str) -> dict[int, ConsolidationPlayStep]:
    return {r.step: r for r in db.session.scalars(select(ConsolidationPlayStep).where(
        ConsolidationPlayStep.org_id == org_id, ConsolidationPlayStep.cluster_key == cluster_key))}


def play_json(org_id: int, cluster_key: str, cluster=None) -> dict:
    from zentro.compliance.reports import _obligation_views as views
    from zentro.compliance.reports.obligation_consolidation import play_state

    rows = play_steps(org_id, cluster_key)
    users = _users(r.updated_by_id for r in rows.values())
    complete, pct, state, nxt = play_state({n: (r.status, r.updated_at, r.updated_by_id) for n, r in rows.items()})
    return {
        "cluster_key": cluster_key, "state": state, "steps_complete": complete, "progress_pct": pct,
        "next_step": nxt, "members": [o.key for o in cluster.members] if cluster is not None else [],
        "steps": [{"step": n, "name": name, "status": rows[n].status if n in rows else "todo",
                   "updated_at": iso(_aware(rows[n].updated_at)) if n in rows else None,
                   "updated_by": user_json(users.get(rows[n].updated_by_id)) if n in rows else None}
                  for n, name, _ in views.PLAY_STEPS]}


def set_play_step(org_id: int, *, cluster_key: str, step: int, status: str, user_id: int | None, actor: Actor,
                  now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    data = validated(PlayStepIn, {"cluster_key": cluster_key, "step": step, "status": status}, HELP)
    cluster = find_cluster(org_id, data.cluster_key, now)
    lock_org(org_id)
    row = db.session.scalar(select(ConsolidationPlayStep).where(
        ConsolidationPlayStep.org_id == org_id, ConsolidationPlayStep.cluster_key == data.cluster_key,
        ConsolidationPlayStep.step == data.step))
    before = row.status if row is not None else "todo"
    if row is None:
        row = ConsolidationPlayStep(org_id=org_id, cluster_key=data.cluster_key, step=data.step, status=data.status,
                                    updated_by_id=user_id, updated_at=now)
        db.session.add(row)
        flush_or_conflict(ApiError(409, "This step was updated at the same time; try again."))
    elif row.status != data.status:
        row.status = data.status
        row.updated_by_id = user_id
        row.updated_at = now
    if before != data.status:
        record(org_id, "consolidation.step_updated", actor, target_type="consolidation_play",
               target_id=data.cluster_key, control_tags=PLAY_TAGS, now=now,
               data={"cluster_key": data.cluster_key, "step": data.step, "from": before, "to": data.status,
                     "members": [o.key for o in cluster.members], "frameworks": list(cluster.frameworks)})
    _commit()
    return play_json(org_id, data.cluster_key, cluster)
