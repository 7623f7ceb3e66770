"""The engine walks the catalogue: every resource quirk is a catalogue flag, so adding a resource never touches it."""

import re
from pathlib import Path

from xero_sync.catalogue import CATALOGUE

ENGINE = Path(__file__).resolve().parents[2] / "layers" / "common" / "xero_sync" / "engine"


def test_no_module_of_the_engine_names_a_resource_of_the_catalogue():
    names = "|".join(re.escape(spec.name) for spec in CATALOGUE)
    quoted = re.compile(rf"""["']({names})["']""")
    found = {
        f"{path.name}:{number}": line.strip()
        for path in sorted(ENGINE.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if quoted.search(line)
    }
    assert list(ENGINE.glob("*.py")), ENGINE
    assert found == {}
