import os
import tempfile

# One intra-op thread for torch (and OpenMP/BLAS) in this process and in every subprocess a test
# starts: results then do not depend on the machine's core count, and tiny ops do not slow down
# 100× when another job loads the cores (OpenMP threads spin-waiting for a busy core).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def single_thread():
    """One torch thread during a test, whatever an earlier test in this worker set (the count the
    learning tests' thresholds were measured with)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_in_pytests_tree(tmp_path_factory):
    """SB3 makes a folder under the system's temporary directory for every ``learn()`` without
    a logger (``SB3-<date>``), torchrun one per launch (``torchelastic_*``): keep them, and other
    temporary files of the tests and their subprocesses, in pytest's own tree, which pytest
    prunes, instead of leaving thousands in ``/tmp``."""
    folder = str(tmp_path_factory.mktemp("tmp"))
    saved = os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = folder, folder
    yield
    tempfile.tempdir = None
    if saved is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def write_point_mass_sequences(path, frames: int = 400, image_size: int = 24, seed: int = 0):
    """An ``npz`` sequence dataset from the synthetic task under random actions: stacked
    observations in time order with their states, actions and episode numbers (episodes of 20
    steps), in the layout ``rlrep.datasets`` reads (as ``dmc:`` caches are written)."""
    import numpy as np

    from rlrep.envs import PointMassPixels

    env = PointMassPixels(image_size=image_size, episode_length=20, random_target=True)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    images, states, actions, episodes = [obs], [info["state"]], [], [0]
    while len(images) < frames:
        actions.append(rng.uniform(-1, 1, 2).astype(np.float32))
        obs, _, terminated, truncated, info = env.step(actions[-1])
        images.append(obs)
        states.append(info["state"])
        episodes.append(episodes[-1])
        if terminated or truncated:
            obs, info = env.reset()
            images.append(obs)  # here the first observation of each episode is kept
            states.append(info["state"])
            actions.append(np.zeros(2, np.float32))  # after an episode's last image: unused
            episodes.append(episodes[-1] + 1)
    actions.append(np.zeros(2, np.float32))
    np.savez(path, images=np.stack(images), states=np.stack(states), actions=np.stack(actions),
             episodes=np.array(episodes))  # fmt: skip
    return path


@pytest.fixture(scope="session")
def sequence_npz(tmp_path_factory):
    """Path of a small sequence dataset (see :func:`write_point_mass_sequences`)."""
    return write_point_mass_sequences(tmp_path_factory.mktemp("sequences") / "point_mass.npz")


def pytest_report_header(config):
    """Which SB3 the plug-in's tests run against (.ci/run runs them with the lowest too)."""
    import stable_baselines3

    try:
        import sb3_contrib

        contrib = f", sb3-contrib {sb3_contrib.__version__}"
    except ImportError:
        contrib = ", no sb3-contrib"
    return f"stable-baselines3 {stable_baselines3.__version__}{contrib}"
