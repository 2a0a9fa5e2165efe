"""The package builds as install.sh builds it, without setuptools warnings (issue 22.10: ~40 lines of
"Package 'verifier.render.templates' is absent from the 'packages' configuration" on every install),
and the wheel carries every data file the product reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA_FILES = {"verifier/py.typed", "verifier/config.example.yaml", "verifier/demo/schema.sql"}


def test_the_wheel_builds_without_warnings_and_holds_the_data_files(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--disable-pip-version-check", "-w", str(tmp_path),
         str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    output = built.stdout + built.stderr
    assert "absent from the `packages` configuration" not in output
    assert "Package would be ignored" not in output
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert names >= DATA_FILES, DATA_FILES - names
    assert any(name.startswith("verifier/render/") and name.endswith("report.html.j2") for name in names), names
