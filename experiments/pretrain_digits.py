"""Self-supervised pretraining on scikit-learn's digits (embedded, no download), then a kNN probe.

Trains a CURL pixel encoder with any rlrep method on the 8×8 digits upscaled to 3×32×32, and
reports kNN top-1 accuracy (k = 20, cosine, weights exp(sim / 0.1)) of its features on a held-out
half, next to the same encoder at random initialisation. The whole rlrep pipeline in one place:
augment → encoder → method → loss → optimiser → EMA targets.

Usage: ``python experiments/pretrain_digits.py [--method simclr] [--epochs 50] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import rlrep.augment as A
import rlrep.encoders as E
import rlrep.methods as M


def digits_as_images() -> tuple[torch.Tensor, torch.Tensor]:
    """(1797, 3, 32, 32) uint8 images (gray repeated to RGB, nearest ×4) and (1797,) labels."""
    data = load_digits()
    x = torch.from_numpy(data.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
    x = x.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    return x.unsqueeze(1).repeat(1, 3, 1, 1).contiguous(), torch.from_numpy(data.target)


@torch.no_grad()
def knn_accuracy(
    encoder: torch.nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 20,
    temperature: float = 0.1,
) -> float:
    """Weighted kNN top-1 (Wu et al. 2018): votes of the k most cosine-similar training
    features, weighted by exp(similarity / temperature)."""
    encoder.eval()
    bank = F.normalize(encoder(train_x), dim=1)
    query = F.normalize(encoder(test_x), dim=1)
    sims, idx = (query @ bank.T).topk(k, dim=1)
    votes = torch.zeros(len(test_x), int(train_y.max()) + 1)
    votes.scatter_add_(1, train_y[idx], (sims / temperature).exp())
    encoder.train()
    return (votes.argmax(1) == test_y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="simclr", choices=list(M.METHODS))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    images, labels = digits_as_images()
    perm = torch.randperm(len(images))
    train, test = perm[: len(perm) // 2], perm[len(perm) // 2 :]

    def new_encoder() -> E.PixelEncoder:
        return E.PixelEncoder((3, 32, 32), features_dim=64, num_filters=32)

    random_init = new_encoder()
    encoder = new_encoder()
    encoder.load_state_dict(random_init.state_dict())
    method = M.make(args.method, encoder)
    augment = A.make(
        "resized_crop+color_jitter", size=32, scale=(0.5, 1.0), hue=0.0, seed=args.seed
    )
    optimizer = torch.optim.Adam(method.parameters(), lr=args.lr)

    print(f"digits: {len(train)} train / {len(test)} test images, method {args.method}")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = train[torch.randperm(len(train))]
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = images[order[i : i + args.batch_size]]
            out = method(augment(batch), augment(batch))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            method.update_targets()
        if epoch % 10 == 0 or epoch == args.epochs:
            acc = knn_accuracy(encoder, images[train], labels[train], images[test], labels[test])
            print(
                f"epoch {epoch:3d}  loss {out.loss.item():.3f}  kNN top-1 {acc:.3f}  "
                f"({time.perf_counter() - start:.0f} s)"
            )

    base = knn_accuracy(random_init, images[train], labels[train], images[test], labels[test])
    final = knn_accuracy(encoder, images[train], labels[train], images[test], labels[test])
    print(f"kNN top-1 on held-out digits: random init {base:.3f} → {args.method} {final:.3f}")


if __name__ == "__main__":
    main()
