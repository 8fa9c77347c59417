"""Instance discrimination with a memory bank (Wu, Xiong, Yu & Lin 2018): the method MoCo's
queue replaced."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.losses.checks import check_temperature
from rlrep.methods.base import AuxOutput, Method, contrastive_metrics
from rlrep.methods.ema import check_momentum

__all__ = ["MemoryBank"]


def _count(value: object, name: str, default: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"MemoryBank: {name} must be an integer >= 1, got {value!r}; {default}")
    return int(value)


class MemoryBank(Method):
    """Each of ``num_instances`` samples (a dataset image, a replay slot) is its own class. The
    bank holds one L2-normalised embedding ``v_i`` per instance; the query
    ``f = normalise(Linear(encoder(x)))`` of sample i is classified against ``v_i`` and
    ``num_negatives`` bank entries drawn uniformly (one draw per batch), at τ = 0.07:
    ``L = −log( exp(f·v_i/τ) / (exp(f·v_i/τ) + Σ_j exp(f·v_j/τ)) )``, both views as queries;
    then ``v_i ← normalise(m·v_i + (1 − m)·f_a)`` with the bank momentum m = 0.5.

    The paper estimates the softmax with NCE; this is the sampled-softmax (InfoNCE) form that
    MoCo's comparison uses (``rlrep.losses.binary_nce`` is the NCE form). Needs each sample's
    instance index: ``method(a, b, index=i)``; ``rlrep pretrain`` passes the dataset index, the
    SB3 plug-in the replay slot (``FrameStackReplayBuffer``; ``num_instances`` = its
    ``buffer_size × n_envs``).

    :param num_instances: N, the bank's rows. :param out_dim: embedding size (128).
    :param num_negatives: bank entries per query (4096). :param temperature: τ (0.07).
    :param bank_momentum: m (0.5). :param gather_distributed: every rank's queries update the
        bank (and are compared) on every rank.
    """

    #: ``forward`` needs ``index=``, each sample's instance (row of the bank).
    needs_index = True

    #: Its loss starts near 11, above the other contrastive losses (docs/benchmarks.md, aux_scales.py).
    default_aux_weight = 0.1

    def __init__(
        self,
        encoder: nn.Module,
        num_instances: int,
        out_dim: int = 128,
        num_negatives: int = 4096,
        temperature: float = 0.07,
        bank_momentum: float = 0.5,
        gather_distributed: bool = False,
    ) -> None:
        num_instances = _count(
            num_instances, "num_instances", "the dataset size (or replay buffer_size × n_envs)"
        )
        num_negatives = _count(num_negatives, "num_negatives", "the paper draws 4096")
        check_temperature(temperature, "MemoryBank")
        super().__init__(encoder, gather_distributed)
        self.projector = nn.Linear(self.features_dim, out_dim)
        self.num_instances, self.num_negatives = num_instances, num_negatives
        self.temperature = temperature
        self.bank_momentum = check_momentum(bank_momentum, "MemoryBank: bank_momentum")
        self.register_buffer("bank", F.normalize(torch.randn(num_instances, out_dim), dim=1))

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        n = self.bank.shape[0]
        if index is None or index.shape != (view_a.shape[0],):
            raise ValueError(
                "MemoryBank needs index=, a (B,) tensor of each sample's instance (bank row); "
                "rlrep pretrain and the SB3 plug-in with FrameStackReplayBuffer pass it"
            )
        index = index.to(self.bank.device)
        if bool(((index < 0) | (index >= n)).any()):
            raise ValueError(f"MemoryBank: index outside the bank's {n} rows (num_instances={n})")
        features = self.encode_views((view_a, view_b), features_a)
        f_a, f_b = F.normalize(self.projector(torch.cat(features)), dim=1).chunk(2)
        f_a, f_b, index = self.gather(f_a), self.gather(f_b), self.gather(index)
        positive = self.bank[index]  # (B, D), constants
        # One draw of negatives shared by the batch: a matrix product instead of a (B, m, D)
        # gather (the paper draws per sample; both estimate the same softmax).
        negatives = self.bank[torch.randint(n, (self.num_negatives,), device=index.device)]
        logits = [
            torch.cat([(f * positive).sum(1, keepdim=True), f @ negatives.T], 1) / self.temperature
            for f in (f_a, f_b)
        ]
        labels = torch.zeros(index.shape[0], dtype=torch.long, device=index.device)
        loss = (F.cross_entropy(logits[0], labels) + F.cross_entropy(logits[1], labels)) / 2
        if self.training:
            with torch.no_grad():
                m = self.bank_momentum
                self.bank[index] = F.normalize(m * positive + (1 - m) * f_a.detach(), dim=1)
        metrics = contrastive_metrics(logits[0], loss, features[0], features[1], labels)
        return AuxOutput(loss, metrics)
