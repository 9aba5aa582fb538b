"""The copilot panel on the incident page: an HTMX partial with the user's latest thread about the incident,
and the form that asks a question. ``static/js/copilot.js`` streams the answer from the chat API (SSE) and
then re-renders the panel; without JavaScript the form posts here and the answer arrives with the page."""
from __future__ import annotations

import re

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from zentro.copilot import service
from zentro.copilot.llm import active_mode
from zentro.incidents.models import Incident
from zentro.incidents.service import get_incident
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.openapi import MAX_ID
from zentro.platform.routes import is_htmx, page_route

bp = Blueprint("copilot_pages", __name__)
SUGGESTIONS = ("What is the status?", "What is the likely cause?", "What should we do next?",
               "Have we seen this before?")


def _panel(incident_id: int, *, error: str = "", question: str = "", status: int = 200):
    p = current_principal()
    incident = get_incident(p.org.id, incident_id)
    thread = service.latest_thread(p.org.id, p.user.id, incident.id)
    return render_template("copilot/_panel.html", incident=incident, thread=thread, copilot_loaded=True,
                           messages=service.messages(p.org.id, thread.id) if thread else [], error=error,
                           question=question, suggestions=SUGGESTIONS,
                           mode=active_mode(current_app.config)), status


@page_route(bp, "/incidents/<int:incident_id>/copilot", tenant_model=Incident,
            summary="The incident's copilot panel (HTMX partial): your latest conversation about it.")
def panel(incident_id: int):
    return _panel(incident_id)


@page_route(bp, "/incidents/<int:incident_id>/copilot", methods=("POST",), endpoint="ask", tenant_model=Incident,
            min_role="viewer", summary="Ask the copilot about the incident (the form's answer without JavaScript).")
def ask(incident_id: int):
    p = current_principal()
    org_id, user_id = p.org.id, p.user.id
    get_incident(org_id, incident_id)
    question = (request.form.get("message") or "").strip()
    if not question or len(question) > service.MAX_MESSAGE or "\x00" in question:
        return _panel(incident_id, question=question[:service.MAX_MESSAGE], status=400,
                      error=f"Ask a question of 1 to {service.MAX_MESSAGE} characters.")
    raw = request.form.get("thread_id", "")
    thread_id = int(raw) if re.fullmatch(r"[0-9]{1,10}", raw) and int(raw) <= MAX_ID else None
    try:
        turn = service.start_turn(org_id, user_id, question, current_app.config, incident_id=incident_id,
                                  thread_id=thread_id)
    except ApiError as exc:
        if exc.status != 404 or thread_id is None:
            raise
        # the thread is gone (or was never yours): start a new one rather than lose the question
        turn = service.start_turn(org_id, user_id, question, current_app.config, incident_id=incident_id)
    turn.run()
    if is_htmx():
        return _panel(incident_id)
    return redirect(url_for("incidents.incident_detail", incident_id=incident_id, _anchor="copilot"), 303)
