"""Pick a headless MuJoCo rendering backend before dm_control is imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. A user's setting is honoured as is; when it is unset,
each candidate (EGL, then OSMesa) is tried in a throw-away subprocess, because a backend that
fails in-process cannot be swapped for another.
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["BACKENDS", "RenderingUnavailableError", "ensure_rendering_backend"]

BACKENDS = ("egl", "osmesa")

_PROBE = (
    "import mujoco\n"
    "from mujoco.{backend} import GLContext\n"
    "ctx = GLContext(8, 8)\n"
    "ctx.make_current()\n"
    "ctx.free()\n"
)

_HELP = (
    "no headless OpenGL backend works for MuJoCo (tried: {tried}). Install one, e.g. on "
    "Debian/Ubuntu `apt-get install libegl1 libgl1` for MUJOCO_GL=egl (GPU or Mesa) or "
    "`apt-get install libosmesa6` for MUJOCO_GL=osmesa (CPU), then set MUJOCO_GL. "
    "State observations (from_pixels=False) need no renderer."
)


class RenderingUnavailableError(RuntimeError):
    """No MuJoCo rendering backend can be used on this machine."""


def _works(backend: str) -> bool:
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE.format(backend=backend)],
            env=env,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def ensure_rendering_backend() -> str:
    """Return the backend MuJoCo will use, choosing one if ``MUJOCO_GL`` is unset.

    :raises RenderingUnavailableError: when no candidate works; the message names the packages.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    if "mujoco" in sys.modules:
        # Too late to choose: MuJoCo already picked its default (GLFW, needs a display).
        return "glfw"
    for backend in BACKENDS:
        if _works(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    raise RenderingUnavailableError(_HELP.format(tried=", ".join(BACKENDS)))
