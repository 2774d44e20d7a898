"""The README's settings table is the configuration's own list: every variable, its default and meaning."""

import re
from pathlib import Path

from app.config import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_every_setting_with_its_default():
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \| (.+?) \|$", README.read_text(), flags=re.M)
    assert rows == [(env, default, doc) for env, default, doc in settings_table()], (
        "README.md's settings table is out of date: replace it with `ninety config --markdown`")
