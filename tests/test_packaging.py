"""The distribution installs one top-level name, ``rlrep``, with every module of the three
folders under it (``agents/`` → ``rlrep.agents``, ``envs/`` → ``rlrep.envs``)."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"rlrep": "rlrep", "agents": "rlrep/agents", "envs": "rlrep/envs"}


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    pytest.importorskip("setuptools", minversion="68", reason="builds the wheel without isolation")
    # A copy of the sources: building in the checkout would reuse a stale build/ folder.
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # No build isolation: the installed setuptools builds it, nothing is downloaded.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, capture_output=True, cwd=src,
    )  # fmt: skip
    (wheel,) = out.glob("rlrep-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


@pytest.mark.slow
def test_wheel_has_only_rlrep_at_the_top(wheel_names):
    top = {
        name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top == {"rlrep"}
    (top_level,) = [n for n in wheel_names if n.endswith(".dist-info/top_level.txt")]
    assert top_level  # written by setuptools; its content is checked through `top` above


@pytest.mark.slow
def test_wheel_holds_every_module_of_the_three_folders(wheel_names):
    expected = {
        f"{dest}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, dest in FOLDERS.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected - wheel_names == set(), "modules missing from the wheel (pyproject packages)"


def run_installed(code: str) -> str:
    """Stdout of ``python -c code`` in a fresh interpreter seeing what the installed distribution
    provides: outside the checkout and without PYTHONPATH, so the folders beside rlrep/ are not
    importable as top-level packages by accident."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/", env=env
    ).stdout


def test_agents_and_envs_import_under_rlrep_only():
    code = (
        "import importlib.util as u, rlrep.agents, rlrep.envs, gymnasium as gym;"
        "print(u.find_spec('agents') is None, u.find_spec('envs') is None,"
        " gym.spec('rlrep/PointMassPixels-v0').entry_point, gym.spec('dmc/cartpole-swingup-v0').entry_point)"
    )
    out = run_installed(code).split()
    assert out == ["True", "True", "rlrep.envs.point_mass:PointMassPixels", "rlrep.envs.dmc:DMCEnv"]


def test_module_colon_id_resolves_in_a_fresh_interpreter():
    # gymnasium's "module:id" form imports the module first: `import rlrep` registers the ids
    # (without importing MuJoCo), so gymnasium and SB3's make_vec_env resolve them.
    code = (
        "import sys, gymnasium as gym;"
        "from stable_baselines3.common.env_util import make_vec_env;"
        "env = gym.make('rlrep:rlrep/PointMassPixels-v0', image_size=24);"
        "vec = make_vec_env('rlrep:rlrep/PointMassPixels-v0', n_envs=2);"
        "import rlrep.envs as E;"
        "print(env.observation_space.shape, vec.num_envs, 'mujoco' in sys.modules,"
        " all(gym.spec(E.dmc_id(t)).entry_point == 'rlrep.envs.dmc:DMCEnv' for t in E.DMC_TASKS))"
    )
    assert run_installed(code).strip() == "(9, 24, 24) 2 False True"


def test_import_rlrep_imports_neither_agents_nor_envs_yet_registers_the_ids():
    code = (
        "import sys, gymnasium as gym, rlrep\n"
        "print(sorted(m for m in sys.modules if m.startswith(('rlrep.envs', 'rlrep.agents'))))\n"
        "print(gym.spec('dmc/walker-walk-v0').entry_point)\n"
        "env = gym.make('rlrep/PointMassPixels-v0', image_size=16)\n"
        "print('rlrep.envs.point_mass' in sys.modules)\n"
    )
    assert run_installed(code).split("\n")[:3] == ["[]", "rlrep.envs.dmc:DMCEnv", "True"]
