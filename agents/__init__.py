"""Ready agents built on Stable-Baselines3 + rlrep (CURL-SAC, PPO with auxiliary losses)."""
