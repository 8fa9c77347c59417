"""Evaluation probes of frozen features: kNN and linear classification, linear state regression.

All take feature matrices, so they serve any encoder: :func:`encode` turns images into features
batch by batch, in eval mode, without gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["encode", "knn_accuracy", "linear_accuracy", "state_r2"]


@torch.no_grad()
def encode(
    encoder: nn.Module,
    images: torch.Tensor,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(N, C, H, W)`` images → ``(N, D)`` float32 features on the CPU (eval mode, no grad)."""
    device = device or next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = [
        encoder(images[i : i + batch_size].to(device)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    encoder.train(was_training)
    return torch.cat(out)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
) -> float:
    """Weighted kNN top-1 (Wu et al. 2018, the SSL monitor): each test point takes the ``k``
    training points of highest cosine similarity ``s``, each voting for its label with weight
    ``exp(s / temperature)``.

    :param train_features: ``(N, D)``; :param train_labels: ``(N,)`` ints ≥ 0.
    :return: accuracy in [0, 1].
    """
    bank = F.normalize(train_features.float(), dim=1)
    classes = int(train_labels.max()) + 1
    k = min(k, len(bank))
    correct = 0
    for i in range(0, len(test_features), 1024):
        query = F.normalize(test_features[i : i + 1024].float(), dim=1)
        sims, idx = (query @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(query), classes).scatter_add_(
            1, train_labels[idx], (sims / temperature).exp()
        )
        correct += (votes.argmax(1) == test_labels[i : i + 1024]).sum().item()
    return correct / len(test_features)


def linear_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    weight_decay: float = 1e-4,
    max_iter: int = 500,
) -> float:
    """Linear probe: multinomial logistic regression on standardised features (L-BFGS, full
    batch, L2 penalty ``weight_decay``), top-1 on the test set."""
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    x, xt = (train_features - mean) / std, (test_features - mean) / std
    classes = int(train_labels.max()) + 1
    linear = nn.Linear(x.shape[1], classes)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(x), train_labels) + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (linear(xt).argmax(1) == test_labels).float().mean().item()


def state_r2(
    train_features: torch.Tensor,
    train_states: torch.Tensor,
    test_features: torch.Tensor,
    test_states: torch.Tensor,
    ridge: float = 1e-3,
) -> float:
    """Linear regression of states from features (closed-form ridge with intercept), scored by
    R² on the test set averaged over state dimensions (scikit-learn's ``r2_score`` default)."""
    x, xt = train_features.double(), test_features.double()
    mean_x, mean_y = x.mean(0), train_states.double().mean(0)
    xc, yc = x - mean_x, train_states.double() - mean_y
    w = torch.linalg.solve(
        xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=torch.float64), xc.T @ yc
    )
    pred = (xt - mean_x) @ w + mean_y
    y = test_states.double()
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-12), torch.zeros_like(ss_res))
    return r2.mean().item()
