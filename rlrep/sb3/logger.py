"""An SB3 callback that writes the auxiliary metrics to the model's logger."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

from rlrep.metrics import effective_rank
from rlrep.sb3.extractor import RepresentationExtractor

__all__ = ["RepresentationLogger"]


class RepresentationLogger(BaseCallback):
    """Record, under ``aux/``, the means of each extractor's auxiliary loss, contrastive
    accuracy (where the method has one) and ``feature_std`` since the last rollout, and every
    ``rank_every`` rollouts the effective rank of the last training features (a collapse alarm).
    SB3 writes them to stdout / csv / tensorboard with its own logs.

    ``model.learn(100_000, callback=RepresentationLogger())``
    """

    def __init__(self, rank_every: int = 50, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.rank_every = rank_every
        self._rollouts = 0

    def _extractors(self) -> dict[str, RepresentationExtractor]:
        found: dict[str, RepresentationExtractor] = {}
        for name, module in self.model.policy.named_modules():
            if isinstance(module, RepresentationExtractor):
                owner = name.rsplit("features_extractor", 1)[0].rstrip("._").replace(".", "_")
                found.setdefault(owner, module)
        return found

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self._rollouts += 1
        for owner, extractor in self._extractors().items():
            prefix = f"aux/{owner}_" if owner else "aux/"
            for key, value in extractor.pop_metrics().items():
                self.logger.record_mean(prefix + key, value)
            if self._rollouts % self.rank_every == 0 and extractor.last_features is not None:
                self.logger.record(
                    prefix + "effective_rank", effective_rank(extractor.last_features).item()
                )
