"""Multi-crop: the spec, view sizes and crop scales, frame stacks, the objective's views, and
pretraining with local views (and its refusal for fixed-size encoders)."""

import pytest
import torch

import rlrep.augment as A
import rlrep.encoders as E
import rlrep.methods as M
from rlrep.objective import AuxObjective
from rlrep.pretrain import pretrain
from rlrep.probes import probe


def images(b=4, c=9, side=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, side, side), generator=g, dtype=torch.uint8)


def test_spec_parses_and_bad_specs_name_the_form():
    assert A.parse_multi_crop("2x32,4x16") == ((2, 32), (4, 16))
    assert A.parse_multi_crop(" 2 x 84 , 6 x 48 ") == ((2, 84), (6, 48))
    for bad in ("2x32", "2x32;4x16", "twox32,4x16", "2x32,4x16,1x8"):
        with pytest.raises(ValueError, match="GxS,LxT"):
            A.parse_multi_crop(bad)
    with pytest.raises(ValueError, match="num_global must be 2"):
        A.multi_crop("3x32,4x16", "resized_crop")
    with pytest.raises(ValueError, match="drop size="):
        A.multi_crop("2x32,4x16", "resized_crop", size=32)


def test_views_have_the_spec_sizes_and_swav_scales_and_eval_is_the_global_view():
    crop = A.multi_crop("2x24,3x8", "resized_crop", seed=0)
    assert [s.scale for s in (crop.global_augment.steps[0], crop.local_augment.steps[0])] == [
        (0.14, 1.0),
        (0.05, 0.14),
    ]
    x = images()
    views = crop.views(x)
    assert [tuple(v.shape[2:]) for v in views] == [(24, 24)] * 2 + [(8, 8)] * 3
    assert all(v.dtype == torch.uint8 for v in views)
    assert not torch.equal(views[0], views[1])
    crop.eval()
    torch.testing.assert_close(crop(x), crop.global_augment.deterministic(x))
    # A recipe without a scale (CURL's crop) takes windows of each side.
    windows = A.multi_crop("2x24,2x16", "crop", seed=0).views(x)
    assert [tuple(v.shape[2:]) for v in windows] == [(24, 24)] * 2 + [(16, 16)] * 2


def test_the_frames_of_a_sample_share_each_views_crop():
    frame = images(c=3)
    x = frame.repeat(1, 3, 1, 1)  # three identical frames per sample
    for view in A.multi_crop("2x24,2x12", "simclr", seed=1).views(x):
        f0, f1, f2 = view.chunk(3, dim=1)
        assert torch.equal(f0, f1) and torch.equal(f1, f2)


def test_the_objective_draws_local_views_and_refuses_two_view_methods():
    torch.manual_seed(0)
    crop = A.multi_crop("2x16,2x8", "resized_crop", seed=0)
    method = M.make("byol", E.ResNet18((9, 16, 16), width=2), hidden_dim=16, out_dim=8)
    objective = AuxObjective(crop, method)
    x = images()
    seen = []
    handle = method.encoder.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[2:]))
    objective.loss(x)
    handle.remove()
    assert seen == [(16, 16), (8, 8)]  # one pass per size: the globals, then the locals
    views = objective.views(x, torch.Generator().manual_seed(3))
    assert len(views) == 4
    torch.manual_seed(0)
    expected = method(*views).loss
    assert torch.isfinite(objective.loss(views=views).loss)
    torch.testing.assert_close(objective.loss(views=views).loss, expected)
    curl = M.make("curl", E.make("curl", (9, 16, 16), num_filters=4, num_layers=2))
    with pytest.raises(ValueError, match="MULTI_VIEW"):
        AuxObjective(crop, curl)


TINY = {"batch_size": 64, "progress": False, "epochs": 1}


def test_pretrain_with_multi_crop_and_a_clear_error_for_fixed_size_encoders(tmp_path):
    history = pretrain(
        method="swav",
        encoder="resnet18",
        encoder_kwargs={"width": 2},
        method_kwargs={"hidden_dim": 16, "out_dim": 8, "num_prototypes": 16},
        multi_crop="2x16,2x8",
        image_size=16,
        out=tmp_path / "swav",
        **TINY,
    )
    assert 0 <= history[0]["knn_top1"] <= 1 and "train_prototypes_used" in history[0]
    # The checkpoint rebuilds its global deterministic view: the probe repeats the run's kNN.
    probed = probe(tmp_path / "swav" / "checkpoint.pt", linear=False)
    assert probed["knn_top1"] == pytest.approx(history[0]["knn_top1"])
    with pytest.raises(ValueError, match=r"--encoder resnet18.*'2x16,4x16'"):
        pretrain(method="swav", multi_crop="2x16,2x8", out=tmp_path / "curl", **TINY)
