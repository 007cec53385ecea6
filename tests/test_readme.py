"""README's two commands are the ones CI runs."""
from pathlib import Path
import re

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_readme_commands_exactly():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in blocks[:2]:
        assert command.strip() in ci, f"README command not run verbatim by .ci/run: {command}"
