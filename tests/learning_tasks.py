"""The synthetic pixel task's learning runs with an auxiliary loss, and their evaluation.

Every model is evaluated on the same 20 seeded episodes (``evaluate``), so a trained model
always scores the same, and training is deterministic for a seed and a torch thread count (the
count changes float rounding, hence the model: runs are single-threaded). The builders here are
measured by ``python experiments/learning_spread.py --seeds 0 1 2 3 4`` (docs/benchmarks.md,
"The plug-in on the synthetic task"), not tested: SAC and PPO learn this task without an
auxiliary loss (``tests/test_point_mass.py``), so a test of them passes with the objective broken
(``train_sac_curl`` took 2 CPU-minutes of the suite, ``train_ppo_simclr`` 1.7);
``tests/test_state_probe.py`` is the test that an objective trains the encoder, and
``tests/test_sb3.py`` that every algorithm trains with one. ``tests/test_learning_over_time.py``
scores the agents with ``evaluate``. Random policy: −41.1 ± 11.6 per episode over 200 episodes
(docs/guides/environments.md), −41.0 on the 20 evaluation episodes.
"""

from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from rlrep import envs
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs

EVAL_SEED = 1000  # the start states of the evaluation episodes; apart from the training seeds
EVAL_EPISODES = 20


def make_env():
    return envs.PointMassPixels(frame_stack=3, image_size=40)


def evaluate(model) -> float:
    """Mean return of ``model``'s deterministic policy over the seeded evaluation episodes."""
    env = make_env()
    env.reset(seed=EVAL_SEED)  # evaluate_policy's DummyVecEnv resets continue this generator
    mean, _ = evaluate_policy(model, env, n_eval_episodes=EVAL_EPISODES, warn=False)
    return float(mean)


def small(method):
    return policy_kwargs(method=method, net_arch=[64, 64], encoder_kwargs={"num_filters": 16})


def train_sac_curl(seed=0):
    model = SAC(
        SharedEncoderSACPolicy,
        make_env(),
        buffer_size=2000,
        learning_starts=300,
        batch_size=64,
        replay_buffer_class=FrameStackReplayBuffer,
        policy_kwargs=small("curl"),
        seed=seed,
    )
    return model.learn(2000)  # ~160 s on one thread


def train_ppo_simclr(seed=0):
    venv = make_vec_env(make_env, n_envs=4, seed=seed)
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=128,
        batch_size=128,
        n_epochs=4,
        learning_rate=1e-3,
        policy_kwargs=small("simclr"),
        seed=seed,
    )
    return model.learn(20_000)  # ~90 s on one thread; seeds 0-4 at 6be5e95: -24.2 to -11.6
