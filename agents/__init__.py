"""Ready agents built on Stable-Baselines3 + rlrep.

- :class:`CURLSAC` — CURL-SAC (Laskin et al. 2020) on SB3's SAC; presets per DMC task in
  :func:`curl_sac_config`.
- :class:`DrQ` — DrQ (Kostrikov et al. 2020) on SB3's SAC; :class:`DrQV2` — DrQ-v2 (Yarats et
  al. 2021) on SB3's TD3; :class:`ATCSAC` — SAC on an encoder trained by ATC alone (Stooke et
  al. 2021); :class:`SPRSAC` — SAC with SPR (Schwarzer et al. 2021) as the encoder's auxiliary
  loss; presets per task in :func:`config_for`.
- :func:`make_ppo_aux` — PPO on pixels with an auxiliary representation loss.
- :func:`train` — what ``rlrep train`` runs: evaluation, logs, atomic checkpoints, resume.
"""

from rlrep.agents.atc_sac import ATCSAC
from rlrep.agents.curl_sac import CURLSAC
from rlrep.agents.drq import DrQ
from rlrep.agents.drqv2 import DrQV2
from rlrep.agents.ppo_aux import make_ppo_aux
from rlrep.agents.presets import (
    ATC_SAC,
    CURL_SAC,
    DRQ,
    DRQ_V2,
    PPO_AUX,
    SPR_SAC,
    ATCSACConfig,
    CURLSACConfig,
    DrQConfig,
    DrQV2Config,
    SPRSACConfig,
    config_for,
    curl_sac_config,
)
from rlrep.agents.spr_sac import SPRSAC
from rlrep.agents.train import AGENTS, parse_frames, train

__all__ = [
    "AGENTS",
    "ATCSAC",
    "ATC_SAC",
    "CURLSAC",
    "CURL_SAC",
    "DRQ",
    "DRQ_V2",
    "PPO_AUX",
    "SPRSAC",
    "SPR_SAC",
    "ATCSACConfig",
    "CURLSACConfig",
    "DrQ",
    "DrQConfig",
    "DrQV2",
    "DrQV2Config",
    "SPRSACConfig",
    "config_for",
    "curl_sac_config",
    "make_ppo_aux",
    "parse_frames",
    "train",
]
