"""Probes against scikit-learn on known features."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier

from rlrep.probes import (
    encode,
    knn_accuracy,
    linear_accuracy,
    state_groups,
    state_r2,
    state_r2_report,
)


def blobs(n=300, d=8, classes=4, spread=1.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.normal(size=(n, d)) * spread
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def test_knn_matches_sklearn_weighted_cosine_knn():
    x, y = blobs(seed=0)
    xt, yt = blobs(seed=1)
    for k in (5, 50):
        sk = KNeighborsClassifier(
            n_neighbors=k,
            metric="cosine",
            algorithm="brute",
            weights=lambda d: np.exp((1 - d) / 0.1),
        )
        sk.fit(x.numpy(), y.numpy())
        expected = (sk.predict(xt.numpy()) == yt.numpy()).mean()
        assert knn_accuracy(x, y, xt, yt, k=k) == pytest.approx(expected, abs=1 / len(yt) + 1e-9)


def test_linear_probe_close_to_sklearn_logistic_regression():
    x, y = blobs(spread=3.0, seed=2)
    xt, yt = blobs(spread=3.0, seed=3)
    mean, std = x.mean(0), x.std(0)
    sk = LogisticRegression(max_iter=2000).fit(((x - mean) / std).numpy(), y.numpy())
    expected = sk.score(((xt - mean) / std).numpy(), yt.numpy())
    assert abs(linear_accuracy(x, y, xt, yt) - expected) <= 0.03


def test_state_r2_matches_sklearn_ridge():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    w = rng.normal(size=(6, 3))
    y = x @ w + rng.normal(size=(200, 3)) * 0.5
    xt = rng.normal(size=(100, 6))
    yt = xt @ w + rng.normal(size=(100, 3)) * 0.5
    expected = r2_score(yt, Ridge(alpha=1e-3).fit(x, y).predict(xt))
    got = state_r2(torch.tensor(x), torch.tensor(y), torch.tensor(xt), torch.tensor(yt))
    assert got == pytest.approx(expected, abs=1e-8)


def test_state_r2_by_group_is_the_mean_of_sklearn_r2_over_its_entries():
    rng = np.random.default_rng(1)
    keys = ("orientations", "orientations", "height", "velocity", "velocity")  # walker's kinds
    assert {k: v.tolist() for k, v in state_groups(keys).items()} == {
        "position": [0, 1, 2],
        "velocity": [3, 4],
    }
    x, xt = rng.normal(size=(300, 8)), rng.normal(size=(100, 8))
    w = rng.normal(size=(8, 5)) * np.array([3, 3, 3, 0.3, 0.3])  # positions easy, speeds hard
    y, yt = x @ w + rng.normal(size=(300, 5)), xt @ w + rng.normal(size=(100, 5))
    predicted = Ridge(alpha=1e-3).fit(x, y).predict(xt)
    per_entry = [r2_score(yt[:, j], predicted[:, j]) for j in range(5)]
    report = state_r2_report(*(torch.tensor(a) for a in (x, y, xt, yt)), keys)
    assert report["state_r2"] == pytest.approx(np.mean(per_entry), abs=1e-8)
    assert report["state_r2_position"] == pytest.approx(np.mean(per_entry[:3]), abs=1e-8)
    assert report["state_r2_velocity"] == pytest.approx(np.mean(per_entry[3:]), abs=1e-8)
    assert set(state_r2_report(*(torch.tensor(a) for a in (x, y, xt, yt)))) == {"state_r2"}


def test_encode_batches_in_eval_mode():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.Dropout(0.5))
    images = torch.rand(10, 3, 2, 2)
    out = encode(net, images, batch_size=3)
    torch.testing.assert_close(out, net.eval()(images))
    assert out.shape == (10, 4)
