"""Packaging: every package under a mapped folder is listed in pyproject, and the mapping holds."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_every_package_under_a_mapped_folder_is_listed() -> None:
    setuptools_cfg = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    listed = set(setuptools_cfg["packages"])
    mapping: dict[str, str] = setuptools_cfg["package-dir"]
    found: set[str] = set()
    for package, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            found.add(".".join([package, *relative.parts]) if relative.parts else package)
    missing = found - listed
    assert not missing, f"packages missing from pyproject [tool.setuptools] packages: {missing}"
    stale = listed - found
    assert not stale, f"pyproject lists packages that do not exist: {stale}"


def test_root_package_lives_in_src_not_at_top_level() -> None:
    assert (ROOT / "src" / "xvol" / "__init__.py").is_file()
    assert not (ROOT / "xvol").exists(), "a top-level ./xvol folder would shadow the package"


def test_mapped_packages_import_as_xvol_namespace() -> None:
    for name in ("xvol.reference", "xvol.model", "xvol.verification", "xvol.experiments"):
        module = importlib.import_module(name)
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_root_package_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, xvol; "
        "print(sorted(m for m in ('xvol.cli', 'numpy', 'z3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
