"""The README documents every setting and the two-command quick start."""
from pathlib import Path

from zentro.config import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in README]
    assert not missing, f"README lacks {missing}"


def test_quick_start_is_two_commands():
    assert "make run" in README and "make test" in README
