"""Evaluation probes of frozen features: kNN and linear classification, linear state regression,
the :func:`invariance` of features to a visual distraction; :func:`evaluate` of an encoder on a
dataset and :func:`probe` of a pretraining checkpoint.

The metrics take feature matrices, so they serve any encoder: :func:`encode` turns images into
features batch by batch, in eval mode, without gradients. :func:`evaluate` is the per-epoch
monitor of :func:`rlrep.pretrain.pretrain` (kNN top-1 for labelled data, linear state R² for
``dmc:`` frames); :func:`probe` is ``rlrep probe``: it rebuilds a checkpoint's encoder
(:mod:`rlrep.checkpoint`, :func:`load_probe_encoder`) and adds the linear top-1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.checkpoint import build_encoder, load_checkpoint, load_encoder
from rlrep.datasets import Dataset, load_dataset

__all__ = [
    "RIDGE_ALPHAS",
    "encode",
    "evaluate",
    "invariance",
    "knn_accuracy",
    "linear_accuracy",
    "load_probe_encoder",
    "probe",
    "resolve_device",
    "ridge_r2",
    "select_ridge",
    "state_groups",
    "state_r2",
    "state_r2_report",
]


#: :func:`select_ridge`'s penalties, relative to the features' scale.
RIDGE_ALPHAS = tuple(10.0**k for k in range(-6, 3))


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
    """Linear regression of states from features (ridge with intercept), scored by R² on the
    test set averaged over state dimensions (scikit-learn's ``r2_score`` default):
    :func:`ridge_r2` averaged."""
    return ridge_r2(train_features, train_states, test_features, test_states, ridge).mean().item()


def ridge_r2(
    train_features: torch.Tensor,
    train_states: torch.Tensor,
    test_features: torch.Tensor,
    test_states: torch.Tensor,
    ridge: float | Sequence[float] = 1e-3,
) -> torch.Tensor:
    """R² per state dimension of ridge regressions (intercept unpenalised) fitted on ``(N, D)``
    features → ``(N, S)`` states and scored on the test set: :func:`state_r2`'s value is their
    mean over dimensions, solved by one SVD of the
    centred features, so also for ``D ≫ N`` (a conv trunk's maps) and for many penalties at once.

    :param ridge: the penalty λ, or several.
    :return: ``(S,)`` R², or ``(len(ridge), S)`` for several penalties.
    """
    lambdas = torch.as_tensor(ridge, dtype=torch.float64)
    x, y = train_features.double(), train_states.double()
    mean_x, mean_y = x.mean(0), y.mean(0)
    u, s, vh = torch.linalg.svd(x - mean_x, full_matrices=False)
    # w(λ) = V diag(s / (s² + λ)) Uᵀ (y − ȳ): the solution of (XᵀX + λI) w = Xᵀ(y − ȳ).
    shrink = s / (s**2 + lambdas.reshape(-1, 1))  # (L, r)
    projected = (test_features.double() - mean_x) @ vh.T  # (N_test, r)
    pred = torch.einsum("tr,lr,rs->lts", projected, shrink, u.T @ (y - mean_y)) + mean_y
    y_test = test_states.double()
    ss_res = ((y_test - pred) ** 2).sum(1)  # (L, S)
    ss_tot = ((y_test - y_test.mean(0)) ** 2).sum(0)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(1e-12), torch.zeros_like(ss_res))
    return r2 if lambdas.dim() else r2[0]


def select_ridge(
    features: torch.Tensor,
    states: torch.Tensor,
    episodes: torch.Tensor,
    alphas: Sequence[float] = RIDGE_ALPHAS,
    folds: int = 4,
) -> float:
    """The ridge penalty of best mean R² over ``folds`` folds of whole episodes (contiguous
    runs of the sorted episode numbers), out of ``λ = α · ‖X − X̄‖²_F / D`` for ``α`` in
    ``alphas``: relative to the features' mean sum of squares, so the choice does not depend on
    their scale, and the probe falls back to about the mean (R² ≈ 0) on features it would
    otherwise overfit (sparse conv maps).

    :param features: ``(N, D)``; :param states: ``(N, S)``; :param episodes: ``(N,)`` numbers.
    """
    x = features.double()
    scale = (x - x.mean(0)).pow(2).sum() / x.shape[1]
    lambdas = [a * scale.item() for a in alphas]
    names = episodes.unique()
    scores = torch.zeros(len(lambdas), dtype=torch.float64)
    for part in torch.tensor_split(names, min(folds, len(names))):
        test = torch.isin(episodes, part)
        scores += ridge_r2(x[~test], states[~test], x[test], states[test], lambdas).mean(1)
    return lambdas[int(scores.argmax())]


def state_groups(state_keys: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
    """The state entries of each kind: ``"velocity"`` (every key naming a velocity) and
    ``"position"`` (the rest: positions, orientations, height, ... of the configuration).

    :param state_keys: one DMC observation key per state entry (``DMCEnv.state_keys``).
    :return: ``{"position": idx, "velocity": idx}`` with ``idx`` long tensors; a kind with no
        entry is left out.
    """
    velocity = torch.tensor(["velocity" in key for key in state_keys], dtype=torch.bool)
    groups = {
        "position": (~velocity).nonzero().squeeze(1),
        "velocity": velocity.nonzero().squeeze(1),
    }
    return {name: idx for name, idx in groups.items() if len(idx)}


def state_r2_report(
    train_features: torch.Tensor,
    train_states: torch.Tensor,
    test_features: torch.Tensor,
    test_states: torch.Tensor,
    state_keys: tuple[str, ...] | list[str] | None = None,
) -> dict[str, float]:
    """``state_r2`` over every state entry, and with ``state_keys`` also ``state_r2_position``
    and ``state_r2_velocity``: one probe per group (:func:`state_groups`), each R² averaged
    over its entries."""
    out = {"state_r2": state_r2(train_features, train_states, test_features, test_states)}
    for name, idx in state_groups(state_keys).items() if state_keys else ():
        out[f"state_r2_{name}"] = state_r2(
            train_features, train_states[:, idx], test_features, test_states[:, idx]
        )
    return out


def invariance(
    encoder: nn.Module,
    view: Callable[[torch.Tensor], torch.Tensor],
    clean: torch.Tensor,
    distracted: torch.Tensor,
    states: torch.Tensor,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """How much a visual distraction moves an encoder's features, and what it costs a state probe.

    Row ``i`` of ``clean`` and of ``distracted`` render one physical state ``states[i]``
    (:func:`rlrep.envs.paired_observations`). With ``c_i``, ``d_i`` the features of the two
    renders, ``n(x) = x / ‖x‖`` and a seeded permutation splitting the ``N`` pairs into a training
    set and a test set of ``round(test_fraction · N)`` (the same split for both renders):

    - ``state_r2``: :func:`state_r2` of a ridge probe fitted on the clean training features,
      scored on the clean test features;
    - ``state_r2_distracted``: that same probe (fitted on clean features) scored on the
      distracted test features: the state the representation still gives under the distraction;
    - ``alignment``: ``mean_i ‖n(c_i) − n(d_i)‖²`` over all pairs (Wang & Isola 2020's
      alignment; 0 when the distraction leaves the features' direction alone, at most 4);
    - ``alignment_shuffled``: ``mean_i ‖n(c_i) − n(d_σ(i))‖²`` for a seeded derangement ``σ``
      (``σ(i) ≠ i``): the distance between renders of unrelated states, the scale of alignment;
    - ``invariance``: ``1 − alignment / alignment_shuffled``: 1 for invariant features, about 0
      when the distraction moves them as far as a different state does (NaN when
      ``alignment_shuffled`` is 0: features that do not vary at all).

    :param encoder: ``(B, ...) → (B, D)`` features (run in eval mode, without gradients).
    :param view: maps the uint8 images to the encoder's input, e.g. ``augment.deterministic``.
    :param clean: ``(N, C, H, W)`` uint8 renders of the clean task.
    :param distracted: ``(N, C, H, W)`` uint8 renders of the same states under the distraction.
    :param states: ``(N, S)`` states the probes regress.
    :param test_fraction: the share of the pairs held out for scoring the probe.
    :param seed: seed of the split and of ``σ``.
    :param device: where the encoder runs (default: where its parameters are).
    :return: the five numbers above, by name.
    :raises ValueError: inputs of different lengths or shapes, or a split leaving fewer than two
        pairs on a side.
    """
    clean, distracted, states = (torch.as_tensor(x) for x in (clean, distracted, states))
    n = len(clean)
    if clean.shape != distracted.shape or len(states) != n:
        raise ValueError(
            f"clean {tuple(clean.shape)}, distracted {tuple(distracted.shape)} and states "
            f"{tuple(states.shape)} must hold the same N pairs (one state per pair of renders)"
        )
    n_test = round(test_fraction * n)
    if n_test < 2 or n - n_test < 2:
        raise ValueError(
            f"test_fraction={test_fraction} splits {n} pairs into {n - n_test} for training and "
            f"{n_test} for testing; each side needs at least 2"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    test, train = order[:n_test], order[n_test:]
    # σ: each pair of a random cycle through all N meets the next one's distracted features.
    cycle = torch.randperm(n, generator=generator)
    shuffled = torch.empty(n, dtype=torch.long)
    shuffled[cycle] = cycle.roll(-1)
    f_clean = encode(encoder, view(clean), device=device)
    f_distracted = encode(encoder, view(distracted), device=device)
    states = states.float()
    fitted = (f_clean[train], states[train])
    r2 = state_r2(*fitted, f_clean[test], states[test])
    r2_distracted = state_r2(*fitted, f_distracted[test], states[test])
    z_clean = F.normalize(f_clean.double(), dim=1)
    z_distracted = F.normalize(f_distracted.double(), dim=1)
    alignment = (z_clean - z_distracted).pow(2).sum(1).mean().item()
    alignment_shuffled = (z_clean - z_distracted[shuffled]).pow(2).sum(1).mean().item()
    return {
        "state_r2": r2,
        "state_r2_distracted": r2_distracted,
        "alignment": alignment,
        "alignment_shuffled": alignment_shuffled,
        "invariance": 1 - alignment / alignment_shuffled if alignment_shuffled > 0 else math.nan,
    }


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA if available, else the CPU; anything else as given, if this machine
    has it.

    :raises ValueError: not a device name, or a CUDA device this machine does not have (never a
        silent fall back to the CPU).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            raise ValueError(
                f"device {device!r}: this machine has {count} CUDA device(s) (torch "
                f"{torch.__version__}); use --device cpu, or auto to take CUDA when present"
            )
    return dev


def evaluate(
    encoder: nn.Module, augment: nn.Module, ds: Dataset, device: torch.device | str
) -> dict[str, float]:
    """kNN (labels) and/or linear R² (states) of the deterministic view's features."""
    view = augment.deterministic
    f_train = encode(encoder, view(ds.train), device=device)
    f_test = encode(encoder, view(ds.test), device=device)
    out: dict[str, float] = {}
    if ds.train_labels is not None:
        keep = ds.train_labels >= 0  # STL-10's unlabelled images carry -1
        out["knn_top1"] = knn_accuracy(f_train[keep], ds.train_labels[keep], f_test, ds.test_labels)
    if ds.train_states is not None:
        out.update(state_r2_report(f_train, ds.train_states, f_test, ds.test_states, ds.state_keys))
    return out


def load_probe_encoder(
    checkpoint: str | Path, *, random_init: bool = False, device: str | torch.device = "auto"
) -> tuple[dict[str, Any], nn.Module, nn.Module]:
    """A checkpoint's config, augmentation and encoder (on ``device``), as :func:`probe` uses them.

    :param random_init: the run's initial weights instead of its trained ones (see :func:`probe`).
    :raises ValueError: an unreadable checkpoint or weights that do not fit its encoder.
    """
    ckpt = load_checkpoint(checkpoint)
    config = ckpt["config"]
    if random_init:
        torch.manual_seed(config["seed"])
        augment, encoder = build_encoder(config)
    else:
        augment, encoder = load_encoder(ckpt, checkpoint)
    return config, augment, encoder.to(resolve_device(device))


def probe(
    checkpoint: str | Path,
    dataset: str | None = None,
    data_dir: str | Path = "data",
    linear: bool = True,
    device: str = "auto",
    random_init: bool = False,
) -> dict[str, float]:
    """Probe a checkpoint's encoder on ``dataset`` (default: the one it was trained on): kNN and
    linear top-1 for labelled sets, linear state R² for ``dmc:`` frames.

    :param random_init: probe the run's initial weights instead of its trained ones (the same
        architecture built after seeding with the run's seed, as ``rlrep pretrain`` builds it
        first): the baseline that says what pretraining bought.

    :raises ValueError: an unreadable checkpoint, weights that do not fit the encoder its config
        describes, or a dataset whose image shape differs from the one it was trained on.
    """
    dev = resolve_device(device)
    config, augment, encoder = load_probe_encoder(checkpoint, random_init=random_init, device=dev)
    name = dataset or config["dataset"]
    ds = load_dataset(name, data_dir, image_size=config["image_shape"][1], seed=config["seed"])
    if tuple(ds.image_shape) != tuple(config["image_shape"]):
        raise ValueError(
            f"{checkpoint} was trained on {config['dataset']} images of shape "
            f"{tuple(config['image_shape'])}, but {name} has {tuple(ds.image_shape)}; probe it "
            "on a dataset of that shape (without --dataset, its own)"
        )
    result = evaluate(encoder, augment, ds, dev)
    if linear and ds.train_labels is not None:
        keep = ds.train_labels >= 0
        f_train = encode(encoder, augment.deterministic(ds.train[keep]), device=dev)
        f_test = encode(encoder, augment.deterministic(ds.test), device=dev)
        result["linear_top1"] = linear_accuracy(
            f_train, ds.train_labels[keep], f_test, ds.test_labels
        )
    return result
