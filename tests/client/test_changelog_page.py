"""/changelog renders CHANGELOG.md for signed-in people: its headings appear, markup written in the file is shown
as text (never injected), a new version of the file is picked up, and signed-out visitors are sent to sign in."""
from __future__ import annotations

import os

from zentro.platform import views


def test_changelog_page_renders_the_files_headings(make_member, sign_in):
    page = sign_in(make_member("alpha", "viewer")).get("/changelog")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>Changelog</h1>" in html and "<h2>Unreleased — platform API</h2>" in html
    assert "<h2>Foundation and platform API dialect — 2026-11-25</h2>" in html
    assert 'href="/changelog"' in html and 'aria-current="page"' in html  # linked, and marked current, in the nav


def test_markup_in_the_file_is_escaped_and_changes_are_picked_up(tmp_path, monkeypatch, make_member, sign_in):
    path = tmp_path / "CHANGELOG.md"
    path.write_text("# Changes\n\n## 1.0\n\n<script>alert(1)</script>\n\n- <b>bold?</b> [x](javascript:alert(1))\n")
    monkeypatch.setattr(views, "CHANGELOG_PATH", path)
    client = sign_in(make_member("alpha", "owner"))
    html = client.get("/changelog").get_data(as_text=True)
    assert "<h2>1.0</h2>" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold?</b>" not in html and "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert 'href="javascript:' not in html

    path.write_text("# Changes\n\n## 2.0\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime, whatever the clock says
    html = client.get("/changelog").get_data(as_text=True)
    assert "<h2>2.0</h2>" in html and "<h2>1.0</h2>" not in html


def test_signed_out_visitors_are_sent_to_sign_in(app):
    resp = app.test_client().get("/changelog")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
