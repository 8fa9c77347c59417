"""Ready agents built on Stable-Baselines3 + rlrep.

- :class:`CURLSAC` — CURL-SAC (Laskin et al. 2020) on SB3's SAC; presets per DMC task in
  :func:`curl_sac_config`.
- :func:`make_ppo_aux` — PPO on pixels with an auxiliary representation loss.
- :func:`train` — what ``rlrep train`` runs: evaluation, logs, atomic checkpoints, resume.
"""

from rlrep.agents.curl_sac import CURLSAC
from rlrep.agents.ppo_aux import make_ppo_aux
from rlrep.agents.presets import CURL_SAC, PPO_AUX, CURLSACConfig, curl_sac_config
from rlrep.agents.train import AGENTS, parse_frames, train

__all__ = [
    "AGENTS",
    "CURLSAC",
    "CURL_SAC",
    "PPO_AUX",
    "CURLSACConfig",
    "curl_sac_config",
    "make_ppo_aux",
    "parse_frames",
    "train",
]
