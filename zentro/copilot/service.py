"""Copilot threads, messages and turns.

A thread belongs to one user in one org (another user's thread is 404, like another org's). A turn stores
the user's message, grounds the question in the org's records (``guided.ground``), then asks each
configured language-model mode in order and falls back to the guided answer; the assistant message keeps
the mode that answered, the references of the grounding and, in ``detail``, why a mode was skipped.
Turns stream: ``Turn.deltas()`` yields text as it arrives and stores the assistant message when done."""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterator

from sqlalchemy import select

from zentro.copilot import guided, llm
from zentro.copilot.models import CopilotMessage, CopilotThread
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.platform.errors import not_found
from zentro.platform.types import iso, utcnow

HISTORY = 10  # earlier messages of the thread sent to a language model
MAX_MESSAGE = 4000


def _incident(org_id: int, incident_id: int | None) -> Incident | None:
    if incident_id is None:
        return None
    inc = db.session.scalar(select(Incident).where(Incident.org_id == org_id, Incident.id == incident_id))
    if inc is None:
        raise not_found("Incident")
    return inc


def create_thread(org_id: int, user_id: int, *, title: str = "", incident_id: int | None = None,
                  now: dt.datetime | None = None) -> CopilotThread:
    inc = _incident(org_id, incident_id)
    now = now or utcnow()
    thread = CopilotThread(org_id=org_id, user_id=user_id, incident_id=inc.id if inc else None,
                           title=(title.strip() or (f"{inc.ref} {inc.title}" if inc else "New conversation"))[:200],
                           created_at=now, updated_at=now)
    db.session.add(thread)
    db.session.commit()
    return thread


def get_thread(org_id: int, user_id: int, thread_id: int) -> CopilotThread:
    thread = db.session.scalar(select(CopilotThread).where(
        CopilotThread.org_id == org_id, CopilotThread.user_id == user_id, CopilotThread.id == thread_id))
    if thread is None:
        raise not_found("Thread")
    return thread


def threads_query(org_id: int, user_id: int, incident_id: int | None = None):
    q = select(CopilotThread).where(CopilotThread.org_id == org_id, CopilotThread.user_id == user_id)
    return q if incident_id is None else q.where(CopilotThread.incident_id == incident_id)


def latest_thread(org_id: int, user_id: int, incident_id: int) -> CopilotThread | None:
    return db.session.scalar(threads_query(org_id, user_id, incident_id).order_by(CopilotThread.id.desc()).limit(1))


def messages_query(org_id: int, thread_id: int):
    return select(CopilotMessage).where(CopilotMessage.org_id == org_id, CopilotMessage.thread_id == thread_id)


def messages(org_id: int, thread_id: int) -> list[CopilotMessage]:
    return list(db.session.scalars(messages_query(org_id, thread_id).order_by(CopilotMessage.id)))


def history(org_id: int, thread_id: int, last: int = HISTORY) -> list[dict]:
    """The latest ``last`` messages of the thread, oldest first, as model chat messages."""
    rows = db.session.scalars(messages_query(org_id, thread_id).order_by(CopilotMessage.id.desc()).limit(last))
    return [{"role": m.role, "content": m.content} for m in reversed(list(rows))]


def thread_json(t: CopilotThread) -> dict:
    return {"id": t.id, "title": t.title, "incident_id": t.incident_id, "created_at": iso(t.created_at),
            "updated_at": iso(t.updated_at)}


def message_json(m: CopilotMessage) -> dict:
    return {"id": m.id, "thread_id": m.thread_id, "role": m.role, "content": m.content, "mode": m.mode or None,
            "references": m.references or [], "detail": m.detail, "created_at": iso(m.created_at)}


def _chunks(text: str) -> Iterator[str]:
    """The guided answer as a stream: one line at a time, so every mode streams the same way."""
    yield from re.findall(r"[^\n]*\n|[^\n]+", text)


class Turn:
    """One assistant turn. Iterate ``deltas()`` to the end (or call ``run()``); then the answer is stored."""

    def __init__(self, org_id: int, thread: CopilotThread, question: str, config, *, incident_id: int | None,
                 now: dt.datetime | None):
        # Only plain values are kept: a streamed answer is stored after the request's session may be gone.
        self.org_id, self.thread_id, self.config, self.now = org_id, thread.id, config, now or utcnow()
        earlier = history(org_id, thread.id)
        db.session.add(CopilotMessage(org_id=org_id, thread_id=thread.id, role="user", content=question,
                                      created_at=self.now))
        thread.updated_at = self.now
        context_incident = incident_id or thread.incident_id
        db.session.commit()
        self.grounding = guided.ground(org_id, question, incident_id=context_incident, now=self.now)
        self.llm_messages = [llm.system_message(self.grounding),
                             *earlier,
                             {"role": "user", "content": question}]
        self.mode, self.details, self.parts = "", [], []
        self.stored: dict | None = None

    def deltas(self) -> Iterator[str]:
        try:
            for mode, stream in llm.adapters(self.config, self.llm_messages, self.grounding):
                try:
                    for delta in stream():
                        self.parts.append(delta)
                        yield delta
                except llm.AdapterError as exc:
                    if self.parts:  # part of the answer is out: keep it, and say it was cut short
                        self.mode = mode
                        self.details.append(f"{mode}: the answer stopped early: {exc}")
                        return
                    self.details.append(f"{mode}: {exc}")
                    continue
                if self.parts:
                    self.mode = mode
                    return
                self.details.append(f"{mode}: empty answer")
            self.mode = "guided"
            for delta in _chunks(guided.answer(self.grounding)):
                self.parts.append(delta)
                yield delta
        finally:
            self._store()

    def run(self) -> dict:
        for _ in self.deltas():
            pass
        return self.result()

    def _store(self) -> None:
        if self.stored is not None:
            return
        message = CopilotMessage(
            org_id=self.org_id, thread_id=self.thread_id, role="assistant",
            content="".join(self.parts) or "(no answer)", mode=self.mode or "guided",
            references=self.grounding.references, detail="; ".join(self.details), created_at=utcnow())
        db.session.add(message)
        thread = db.session.get(CopilotThread, self.thread_id)
        if thread is not None:
            thread.updated_at = message.created_at
        db.session.commit()
        self.stored = {"answer": message.content, "mode": message.mode, "references": message.references,
                       "thread_id": self.thread_id, "message_id": message.id, "detail": message.detail}

    def result(self) -> dict:
        """The stored answer as the API shows it (after ``deltas()`` has run to its end)."""
        return dict(self.stored)


def start_turn(org_id: int, user_id: int, question: str, config, *, thread_id: int | None = None,
               incident_id: int | None = None, now: dt.datetime | None = None) -> Turn:
    """Store the question in the user's thread (a new one when ``thread_id`` is None) and prepare the answer."""
    _incident(org_id, incident_id)
    if thread_id is not None:
        thread = get_thread(org_id, user_id, thread_id)
    else:
        thread = create_thread(org_id, user_id, title=question.splitlines()[0][:80] if question.strip() else "",
                               incident_id=incident_id, now=now)
    return Turn(org_id, thread, question, config, incident_id=incident_id, now=now)
