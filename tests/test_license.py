"""The project's license: AGPL-3.0-or-later, compatible with ultralytics' AGPL-3.0, declared the PEP 639 way."""

from __future__ import annotations

from importlib.metadata import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_license_file_metadata_and_readme_agree() -> None:
    from setuptools.config.pyprojecttoml import read_configuration  # validates pyproject.toml as it reads

    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("GNU AFFERO GENERAL PUBLIC LICENSE") and "Version 3, 19 November 2007" in text
    project = read_configuration(REPO / "pyproject.toml")["project"]
    assert project["license"] == "AGPL-3.0-or-later" and project["license-files"] == ["LICENSE"]
    # ultralytics, which the YOLO path runs, is AGPL-3.0: ours must be the AGPL (3.0 or later admits it).
    ultralytics = metadata("ultralytics")
    declared = " ".join(filter(None, [ultralytics.get("License-Expression"), ultralytics.get("License")]))
    assert "AGPL" in declared, declared
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## License" in readme and "AGPL-3.0-or-later" in readme and "ultralytics" in readme
