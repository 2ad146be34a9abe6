"""Rewrite the build container's Python paths baked into the ROS 2 wheels' CMake/ament files.

The Kilted wheels were built in a manylinux container whose Python lived at /opt/python/cp311-cp311;
their CMake export files and ament index entries still name it, and CMake's generate step fails on
a machine without it. We rewrite them, in the venv only, to this interpreter's include directory,
numpy's include directory and the venv prefix. Idempotent: a second run finds nothing to change.

Usage: python fix_wheel_paths.py VENV [--numpy-include]
(--numpy-include prints the out-of-tree numpy include path to give CMake as Python3_NumPy_INCLUDE_DIR.)
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

BAKED = "/opt/python/cp311-cp311"


def numpy_include_outside(venv: Path) -> str:
    """numpy's include directory, reached through a symlink outside the source tree.

    The generated message targets export numpy's include directory; CMake refuses to export a path
    inside the source directory, and the venv (.venv) lives inside the checkout.
    """
    import numpy

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vla_ros"
    cache.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(str(venv).encode()).hexdigest()[:12]
    link = cache / f"numpy-include-{tag}"
    target = Path(numpy.get_include())
    if link.is_symlink() and Path(os.readlink(link)) != target:
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(target, target_is_directory=True)
    return str(link)


def replacements(venv: Path) -> list[tuple[str, str]]:
    """Ordered (old, new) pairs: the most specific paths first."""
    import numpy

    numpy_inc = numpy_include_outside(venv)
    return [
        (f"{BAKED}/include/python3.11", sysconfig.get_paths()["include"]),
        (f"{BAKED}/lib/python3.11/site-packages/numpy/_core/include", numpy_inc),
        (numpy.get_include(), numpy_inc),
        (BAKED, str(venv)),
    ]


def main(argv: list[str]) -> int:
    """Rewrite every text file under VENV/share that names the baked prefix; print a count."""
    venv = Path(argv[1]).resolve()
    if argv[2:] == ["--numpy-include"]:
        print(numpy_include_outside(venv))
        return 0
    pairs = replacements(venv)
    changed = 0
    numpy_in_venv = pairs[2][0]
    for path in (venv / "share").rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if BAKED not in text and numpy_in_venv not in text:
            continue
        new_text = text
        for old, new in pairs:
            new_text = new_text.replace(old, new)
        if new_text != text:
            path.write_text(new_text)
            changed += 1
    print(f"[setup] repaired baked CMake paths in {changed} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
