"""Language-model adapters for the copilot, tried in order: an OpenAI-compatible API (when OPENAI_API_KEY
is set), then the reasoning backend (when ZENTRO_REASONING_API_URL is set); the offline guided mode is
the last resort and never fails (see ``service.Turn``).

Each adapter streams text deltas and raises ``AdapterError`` (with the reason a person can read) on any
failure. Both connect through ``guarded_client``: the outgoing-address policy
(ZENTRO_CONNECTORS_ALLOW_PRIVATE), one timeout (ZENTRO_CONNECTOR_TIMEOUT_SECONDS), no redirects."""
from __future__ import annotations

import json
from typing import Callable, Iterator

import httpx

from zentro.copilot.guided import Grounding, answer
from zentro.platform.outbound import MAX_DETAIL, AddressRefused, check_base_url, guarded_client

SYSTEM_PROMPT = (
    "You are Zentro's incident copilot for site reliability engineers. Answer the user's question using ONLY the "
    "facts below, which come from their organisation's records. Be brief and concrete; cite records by their "
    "label (e.g. INC-42, RCA run #7, a control tag). Never invent incident numbers, ids, services or controls; if "
    "the facts do not answer the question, say so and suggest what to look at.\n\nFacts:\n")


class AdapterError(Exception):
    """A mode could not answer; the message says why (it lands in the assistant message's detail)."""


def active_mode(config) -> str:
    """The first mode the copilot will try with this configuration."""
    if config.get("OPENAI_API_KEY"):
        return "openai"
    if config.get("ZENTRO_REASONING_API_URL"):
        return "reasoning"
    return "guided"


def system_message(g: Grounding) -> dict:
    refs = "\n".join(f"- {r['type']} {r['id']}: {r['label']}" for r in g.references) or "- (none)"
    return {"role": "system", "content": SYSTEM_PROMPT + answer(g) + "\n\nRecords:\n" + refs}


def _settings(config) -> tuple[bool, float]:
    return bool(config["ZENTRO_CONNECTORS_ALLOW_PRIVATE"]), float(config["ZENTRO_CONNECTOR_TIMEOUT_SECONDS"])


def _refused(exc: BaseException | None) -> str:
    while exc is not None:  # the address policy's refusal may be wrapped by the client library
        if isinstance(exc, AddressRefused):
            return str(exc)
        exc = exc.__cause__ or exc.__context__
    return ""


def openai_stream(config, messages: list[dict]) -> Iterator[str]:
    """Chat completion deltas from the OpenAI-compatible API at ZENTRO_OPENAI_BASE_URL (no retries: the
    next mode is the fallback)."""
    import openai

    base = config["ZENTRO_OPENAI_BASE_URL"]
    refusal = check_base_url(base)
    if refusal:
        raise AdapterError(refusal)
    allow, timeout = _settings(config)
    http_client = guarded_client(allow_private=allow, timeout=timeout)
    client = openai.OpenAI(api_key=config["OPENAI_API_KEY"], base_url=base, timeout=timeout, max_retries=0,
                           http_client=http_client)
    try:
        stream = client.chat.completions.create(model=config["ZENTRO_OPENAI_MODEL"], messages=messages, stream=True)
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    yield choice.delta.content
    except openai.APIStatusError as exc:
        raise AdapterError(f"HTTP {exc.status_code}: {exc.message}"[:MAX_DETAIL]) from None
    except openai.APITimeoutError:
        raise AdapterError(f"timed out after {timeout:g} s") from None
    except (openai.OpenAIError, AddressRefused, httpx.HTTPError) as exc:
        raise AdapterError((_refused(exc) or f"{type(exc).__name__}: {exc}")[:MAX_DETAIL]) from None
    finally:
        http_client.close()


def _sse_data(lines: list[str]) -> tuple[str, str]:
    event, data = "message", []
    for line in lines:
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return event, "\n".join(data)


def _text_of(payload: str) -> str:
    """A reasoning SSE event's text: a JSON object's delta/answer/content/text, a JSON string, or raw text."""
    try:
        value = json.loads(payload)
    except ValueError:
        return payload
    if isinstance(value, dict):
        for key in ("delta", "answer", "content", "text"):
            if isinstance(value.get(key), str):
                return value[key]
        return ""
    return value if isinstance(value, str) else ""


def _sse_events(resp: httpx.Response) -> Iterator[tuple[str, str]]:
    pending: list[str] = []
    for line in resp.iter_lines():
        if line:
            pending.append(line)
            continue
        if pending:
            yield _sse_data(pending)
            pending = []
    if pending:
        yield _sse_data(pending)


def reasoning_stream(config, messages: list[dict], g: Grounding) -> Iterator[str]:
    """POST {base}/chat {messages, context}: a JSON ``{answer}`` or an SSE stream of deltas (``event: done``
    ends it, ``event: error`` fails it)."""
    base = config["ZENTRO_REASONING_API_URL"]
    refusal = check_base_url(base)
    if refusal:
        raise AdapterError(refusal)
    allow, timeout = _settings(config)
    context = {"facts": g.text(), "references": g.references, "intents": g.intents,
               "incident_id": g.incident.id if g.incident is not None else None}
    try:
        with guarded_client(allow_private=allow, timeout=timeout) as client, client.stream(
                "POST", base.rstrip("/") + "/chat", json={"messages": messages, "context": context},
                headers={"Accept": "text/event-stream, application/json"}) as resp:
            if not resp.is_success:
                raise AdapterError(f"HTTP {resp.status_code}")
            if resp.headers.get("content-type", "").startswith("text/event-stream"):
                for event, data in _sse_events(resp):
                    if event == "done":
                        return
                    if event == "error":
                        raise AdapterError(f"the backend reported an error: {data}"[:MAX_DETAIL])
                    text = _text_of(data)
                    if text:
                        yield text
                return
            try:
                body = json.loads(resp.read())
            except ValueError:
                raise AdapterError("the answer is not JSON") from None
            if not isinstance(body, dict) or not isinstance(body.get("answer"), str) or not body["answer"].strip():
                raise AdapterError("the JSON answer has no non-empty string 'answer'")
            yield body["answer"]
    except AddressRefused as exc:
        raise AdapterError(str(exc)) from None
    except httpx.TimeoutException:
        raise AdapterError(f"timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise AdapterError(f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]) from None


def adapters(config, messages: list[dict], g: Grounding) -> list[tuple[str, Callable[[], Iterator[str]]]]:
    """The configured language-model modes, in the order they are tried."""
    out = []
    if config.get("OPENAI_API_KEY"):
        out.append(("openai", lambda: openai_stream(config, messages)))
    if config.get("ZENTRO_REASONING_API_URL"):
        out.append(("reasoning", lambda: reasoning_stream(config, messages, g)))
    return out
