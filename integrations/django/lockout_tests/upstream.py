"""Axes' own test suite, which only its sdist ships: the sdist of the installed django-axes
version (its tests are written for that version's code), downloaded once into ``<repo>/target``,
checked against a known sha256, unpacked, and put on ``sys.path`` so that ``tests.base``,
``tests.settings``, ``tests.test_handlers`` and ``tests.test_login`` import.
"""

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# The sha256 of the sdist of each django-axes version the tests run on (PyPI's digests).
AXES_SDIST_SHA256 = {
    "8.0.0": "f95b6ae67fd77d44cc688818cef174914c4ad98c48daf65020b6f03f37220e45",
    "8.3.1": "d57e923c0ba33cf45275253dd1313c3a3ff04bec686b38d677beb2b3d43c7bcd",
}
REPO = Path(__file__).resolve().parents[3]
SDIST_CACHE = REPO / "target" / "axes-sdist"


def add_axes_tests_to_path():
    root = _unpacked_sdist()
    # Appended, so that the installed axes package stays the one imported.
    if str(root) not in sys.path:
        sys.path.append(str(root))
    import tests

    if Path(tests.__file__).parent != root / "tests":
        raise RuntimeError(f"`tests` imports from {tests.__file__}, not from {root}")


def _unpacked_sdist():
    version = importlib.metadata.version("django-axes")
    if version not in AXES_SDIST_SHA256:
        raise RuntimeError(
            f"django-axes {version} is installed; Axes' own tests are known for "
            f"{', '.join(AXES_SDIST_SHA256)}: add its sdist's sha256 to AXES_SDIST_SHA256"
        )
    SDIST_CACHE.mkdir(parents=True, exist_ok=True)
    archive = SDIST_CACHE / f"django_axes-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(SDIST_CACHE),
                f"django-axes=={version}",
            ],
            check=True,
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != AXES_SDIST_SHA256[version]:
        raise RuntimeError(f"{archive} has sha256 {digest}, expected {AXES_SDIST_SHA256[version]}")
    root = SDIST_CACHE / f"django_axes-{version}"
    if not root.is_dir():
        with tempfile.TemporaryDirectory(dir=SDIST_CACHE) as scratch:
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter="data")
            os.replace(Path(scratch) / root.name, root)
    return root
