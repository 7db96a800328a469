"""lockout-axes installs beside a site's pins and changes none of them: ``python -m build``
makes its sdist and wheel (the wheel built from the sdist), the wheel goes into a fresh virtual
environment holding Climweb's pins (requirements-climweb.txt), and ``pip freeze`` finds every pin
as it was; the package imports there, and its templates came along."""

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import lockout_axes

PACKAGE = Path(__file__).resolve().parents[2]
CLIMWEB_PINS = PACKAGE / "requirements-climweb.txt"

IMPORT_CHECK = """
import django
from django.conf import settings
from importlib.resources import files
settings.configure(INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                                   "lockout_axes", "axes"])
django.setup()
import lockout_axes, lockout_axes.handler, lockout_axes.middleware, lockout_axes.checks
import lockout_axes.urls
templates = files("lockout_axes") / "templates" / "lockout_axes"
names = ["unavailable.html", "unlock.html", "unlock_email.txt", "unlock_email_subject.txt"]
print(lockout_axes.__version__, all((templates / name).is_file() for name in names))
"""


def run(*command, cwd=None):
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def freeze(python):
    return set(run(python, "-m", "pip", "freeze", "--all", "--exclude-editable").splitlines())


def test_the_wheel_installs_beside_climwebs_pins_and_changes_none(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run(sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), cwd=source)
    version = lockout_axes.__version__
    [wheel] = (tmp_path / "dist").glob(f"lockout_axes-{version}-py3-none-any.whl")
    assert (tmp_path / "dist" / f"lockout_axes-{version}.tar.gz").is_file()

    venv.create(tmp_path / "site", with_pip=True)
    python = str(tmp_path / "site" / "bin" / "python")
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    run(*pip, "-r", str(CLIMWEB_PINS))
    before = freeze(python)
    run(*pip, str(wheel))
    after = freeze(python)

    assert before - after == set(), "a pin changed"
    [added] = after - before
    assert added.startswith(f"lockout-axes @ {wheel.as_uri()}"), "only lockout-axes, from the wheel"
    assert run(python, "-c", IMPORT_CHECK, cwd=tmp_path).split() == [version, "True"]
