"""The documentation builds with warnings as errors, and says what the code does.

The configuration reference must list every key of the schema with a default and a reason; the quickstart
must show the README's command word for word.
"""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs-html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html"]
    command += [str(DOCS), str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return out


def schema_keys(model, prefix=""):
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from schema_keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_configuration_reference_lists_every_key_with_default_and_reason(built_docs):
    from aiida_autopipe.core.config.schema import FullConfig

    page = (built_docs / "configuration.html").read_text()
    rows = {}
    for row in re.findall(r"<tr class=\"row-(?:odd|even)\">(.*?)</tr>", page, re.S):
        cells = [
            html.unescape(re.sub("<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td>(.*?)</td>", row, re.S)
        ]
        if cells:  # header rows hold <th> cells only
            rows[cells[0]] = cells
    expected = [key for key in schema_keys(FullConfig) if not key.startswith("decisions")]
    assert sorted(rows) == sorted(expected)
    for key, (_, _, _, default, filled_by) in rows.items():
        assert default, f"{key} has no default in the reference"
        assert filled_by, f"{key} has no reason in the reference"
    assert rows["resources.pw.mpi_ranks"][3] == "2"


def test_quickstart_shows_the_readme_command(built_docs):
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"<!-- setup-command -->\s*```bash\n(.*?)\n```", readme, re.S).group(1).strip()
    assert command in (DOCS / "quickstart.md").read_text()
    for page in ("quickstart", "cluster", "sharing", "troubleshooting", "modules/labeling"):
        assert (built_docs / f"{page}.html").is_file()
