"""One report, every channel: the e-mail parts, the Slack blocks and the webhook data carry the same figures."""
from __future__ import annotations

import datetime as dt

from zentro.compliance.reporting import Report, Section, columns
from zentro.notify.messages import ROWS_PER_SECTION, from_report

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)


def _report(rows: int) -> Report:
    return Report(
        "sla-reminders", "Compliance SLA reminders", {"dueSoonDays": 7},
        {"overdue": 2, "due_soon": 1, "owners": ["a@x.example"]},
        [Section("candidates", "Candidates", columns("control", "owner", ("due_at", "Due")),
                 [{"control": f"CC{i}.1", "owner": "a@x.example <b>", "due_at": NOW + dt.timedelta(days=i)}
                  for i in range(rows)]),
         Section("empty", "Nothing here", columns("x"), [])],
        NOW, notes=["Demo data."])


def test_text_html_blocks_and_data_agree():
    m = from_report(_report(3), org_name="Acme & Co", period="2026-11-26", link="https://z.example/r")
    assert m.subject == "[Zentro] Compliance SLA reminders — Acme & Co (2026-11-26)"
    assert "- Overdue: 2" in m.text and "- Due soon: 1" in m.text
    assert "Candidates (3)" in m.text and "Control: CC2.1; Owner: a@x.example <b>; Due: 2026-11-28T09:00:00Z" in m.text
    assert "Nothing here (0)\n  (none)" in m.text
    assert "Note: Demo data." in m.text and "Full report: https://z.example/r" in m.text
    # HTML escapes what people typed
    assert "Acme &amp; Co" in m.html and "a@x.example &lt;b&gt;" in m.html and "<b>" not in m.html
    assert m.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Compliance SLA reminders"}}
    assert any(b.get("fields") and b["fields"][0]["text"] == "*Overdue*\n2" for b in m.blocks)
    assert m.blocks[-1]["elements"][0]["url"] == "https://z.example/r"
    assert m.data["summary"] == {"overdue": 2, "due_soon": 1, "owners": ["a@x.example"]}
    assert m.data["sections"]["candidates"][0] == {"control": "CC0.1", "owner": "a@x.example <b>",
                                                   "due_at": "2026-11-26T09:00:00Z"}
    assert m.data["period"] == "2026-11-26" and m.data["params"] == {"dueSoonDays": 7}


def test_long_sections_are_cut_with_a_count_and_no_link_without_a_public_url():
    m = from_report(_report(ROWS_PER_SECTION + 5), org_name="Acme", period="2026-W48")
    assert m.text.count("Control: CC") == ROWS_PER_SECTION and "… and 5 more" in m.text
    assert "Full report" not in m.text and "<a href" not in m.html
    assert all(b["type"] != "actions" for b in m.blocks)
    assert len(m.data["sections"]["candidates"]) == ROWS_PER_SECTION + 5
    assert len(m.blocks) <= 50
