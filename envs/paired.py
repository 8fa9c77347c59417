"""Clean and distracted renders of the same physical states, for invariance probes.

:func:`paired_observations` steps a clean DMC env and a distracted one, built with the same seed,
side by side under the same random actions. A distraction changes only what is drawn
(:mod:`rlrep.envs.distractions`), so the two follow the same trajectory: each agent step gives
one pair of observations of one state, which :func:`rlrep.probes.invariance` compares. The
states are checked to agree at every step, rewards and episode ends too.
"""

from __future__ import annotations

import numpy as np

from rlrep.envs.dmc import make_dmc

__all__ = ["paired_observations"]


def paired_observations(
    task: str,
    distraction: str,
    *,
    steps: int = 1000,
    seed: int = 0,
    image_size: int = 64,
    frame_stack: int = 3,
    action_repeat: int | None = None,
) -> dict[str, np.ndarray]:
    """Observations of ``task`` rendered clean and with ``distraction`` along one trajectory.

    Both envs are ``make_dmc(task, ..., seed=seed)`` (the second with ``distraction``) and are
    reset with ``seed`` first, then together whenever an episode ends; each agent step takes the
    same action in both, drawn uniformly from [-1, 1] by ``numpy.random.default_rng(seed)``.
    Every observation is kept, the first of each episode included.

    :param task: a DMC task, e.g. ``"cartpole-swingup"`` (:data:`rlrep.envs.DMC_TASKS`).
    :param distraction: one of :data:`rlrep.envs.DISTRACTIONS`.
    :param steps: ``N``, the number of observation pairs (agent steps, resets' included).
    :param seed: seed of both envs (task and distraction generators) and of the actions.
    :param image_size: side ``H = W`` of the renders.
    :param frame_stack: ``k``, frames per observation (newest last).
    :param action_repeat: physics steps per agent step; ``None``: CURL's per-task value.
    :return: ``"clean"`` and ``"distracted"``: ``(N, 3·k, H, W)`` uint8 observations;
        ``"states"``: ``(N, S)`` float32 proprioceptive states (``info["state"]``), the same for
        both renders.
    :raises ValueError: an unknown task or distraction, a non-positive size or ``steps``.
    :raises RuntimeError: the two envs' states, rewards or episode ends differ (the distraction
        would have changed the physics: the pairs would not show the same state).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    options = {
        "image_size": image_size,
        "frame_stack": frame_stack,
        "action_repeat": action_repeat,
        "seed": seed,
    }
    clean = make_dmc(task, **options)
    try:
        distracted = make_dmc(task, distraction=distraction, **options)
    except BaseException:
        clean.close()
        raise
    try:
        shape = (steps, *clean.observation_space.shape)
        out = {
            "clean": np.empty(shape, np.uint8),
            "distracted": np.empty(shape, np.uint8),
            "states": np.empty((steps, clean.state_space.shape[0]), np.float32),
        }
        rng = np.random.default_rng(seed)
        obs_c, info_c = clean.reset(seed=seed)
        obs_d, info_d = distracted.reset(seed=seed)
        for i in range(steps):
            _same(info_c["state"], info_d["state"], f"states at step {i}", distraction)
            out["clean"][i], out["distracted"][i], out["states"][i] = obs_c, obs_d, info_c["state"]
            if i == steps - 1:
                break
            action = rng.uniform(-1.0, 1.0, clean.action_space.shape).astype(np.float32)
            obs_c, reward_c, term_c, trunc_c, info_c = clean.step(action)
            obs_d, reward_d, term_d, trunc_d, info_d = distracted.step(action)
            _same(
                np.array([reward_c, term_c, trunc_c], np.float64),
                np.array([reward_d, term_d, trunc_d], np.float64),
                f"rewards or episode ends at step {i + 1}",
                distraction,
            )
            if term_c or trunc_c:
                obs_c, info_c = clean.reset()
                obs_d, info_d = distracted.reset()
    finally:
        clean.close()
        distracted.close()
    return out


def _same(clean: np.ndarray, distracted: np.ndarray, what: str, distraction: str) -> None:
    if not np.array_equal(clean, distracted):
        raise RuntimeError(
            f"the clean and the {distraction} env diverged ({what}: {clean} vs {distracted}); a "
            "distraction must leave the physics alone, so the pairs would not show one state"
        )
