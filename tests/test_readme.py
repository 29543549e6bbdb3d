"""README's copy of the evidence table is the script's output, not typed by hand."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_carries_the_generated_evidence_verbatim():
    evidence = (ROOT / "recipes" / "EVIDENCE.md").read_text()
    body = evidence.split("\n", 2)[2].strip().replace("\n## ", "\n#### ")
    assert body in (ROOT / "README.md").read_text(), "paste recipes/EVIDENCE.md into README.md again"


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    install = next(line for line in lines if line.startswith("python3 -m venv .venv"))
    assert install in readme and lines[-1].endswith("python -m pytest")


def test_readme_quick_start_runs_as_written(tmp_path):
    import os
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    program = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "\n    ...\n" not in program
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restored epoch" in result.stdout and (tmp_path / "restored.ckpt").is_file()
