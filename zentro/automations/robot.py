"""Sending an execution to the robot backend (``ZENTRO_ROBOT_API_URL``): one JSON POST to
``{url}/executions`` through the outbound address policy, with the connector timeout. Without a URL,
executions are recorded for a person to carry out (mode ``manual``) and say so."""
from __future__ import annotations

from flask import current_app

from zentro.platform.outbound import post_json

MANUAL_DETAIL = "No robot backend configured (ZENTRO_ROBOT_API_URL unset): recorded for a person to carry out."


def configured() -> bool:
    return bool(current_app.config.get("ZENTRO_ROBOT_API_URL"))


def send(payload: dict) -> tuple[bool, int | None, str]:
    """POST the execution; (accepted: a 2xx answer, HTTP status or None, what happened). Never raises."""
    url = current_app.config["ZENTRO_ROBOT_API_URL"].rstrip("/") + "/executions"
    return post_json(url, payload, timeout=current_app.config["ZENTRO_CONNECTOR_TIMEOUT_SECONDS"],
                     allow_private=bool(current_app.config["ZENTRO_CONNECTORS_ALLOW_PRIVATE"]))
