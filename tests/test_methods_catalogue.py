"""NNCLR, MoCo v3, multi-view forms and the hard-negative options against independent
computations of the papers' formulas; gradients reach the online branch only."""

import pytest
import torch
import torch.nn.functional as F

import rlrep.encoders as E
import rlrep.losses as L
import rlrep.methods as M


def encoder():
    return E.ResNet18((3, 16, 16), width=2)


def crops(b=8, sides=(16, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, 3, s, s, generator=g) for s in sides]


def grads(module):
    return {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


def test_nnclr_positive_is_the_nearest_support_entry_and_the_loss_follows_the_paper():
    torch.manual_seed(0)
    method = M.NNCLR(encoder(), hidden_dim=16, out_dim=8, support_size=32)
    a, b = crops()
    z = torch.randn(5, 8)
    nearest = method.nearest_neighbour(z)
    for i in range(5):  # a loop over the support set, by cosine
        cos = [F.cosine_similarity(z[i], s, dim=0) for s in method.support]
        assert torch.equal(nearest[i], method.support[int(torch.stack(cos).argmax())])
    support = method.support.clone()
    out = method(a, b)
    out.loss.backward()
    got = grads(method)
    method.zero_grad()
    z = method.projector(torch.cat(method.encode_views((a, b))))
    z_a, z_b = z.chunk(2)
    p_a, p_b = method.predictor(z).chunk(2)

    def nn_of(x):
        return support[(F.normalize(x, dim=1) @ support.T).argmax(dim=1)]

    expected = (
        L.info_nce(nn_of(z_a.detach()), p_b, temperature=0.1)
        + L.info_nce(nn_of(z_b.detach()), p_a, temperature=0.1)
    ) / 2
    torch.testing.assert_close(out.loss, expected)
    expected.backward()
    for k, p in method.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[k], p.grad, msg=k)
    # The first view's normalised projections joined the support set.
    torch.testing.assert_close(method.support[:8], F.normalize(z_a.detach(), dim=1))
    assert method.support_ptr.item() == 8 and "mi_bound" in out.metrics


def test_moco_v3_is_two_tau_times_the_symmetric_loss_against_momentum_keys():
    torch.manual_seed(0)
    method = M.MoCoV3(encoder(), hidden_dim=16, out_dim=8, temperature=0.2)
    with torch.no_grad():  # targets unlike the online side, so the test can tell them apart
        for p in method.target_encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    a, b = crops()
    out = method(a, b)
    out.loss.backward()
    got = grads(method)
    method.zero_grad()
    q_a, q_b = method.predictor(method.projector(method.encoder(torch.cat([a, b])))).chunk(2)
    with torch.no_grad():
        k_a, k_b = method.target_projector(method.target_encoder(torch.cat([a, b]))).chunk(2)
    expected = (
        2 * 0.2 * (L.info_nce(q_a, k_b, temperature=0.2) + L.info_nce(q_b, k_a, temperature=0.2))
    )
    torch.testing.assert_close(out.loss, expected)
    expected.backward()
    assert not any(k.startswith("target_") for k in got)
    for k, p in method.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[k], p.grad, msg=k)
    assert len(method.momentum_pairs()) == 2


def test_byol_with_local_views_averages_every_view_predicting_each_global_target():
    torch.manual_seed(0)
    method = M.BYOL(encoder(), hidden_dim=16, out_dim=8)
    views = crops(sides=(16, 16, 8, 8))
    loss = method(*views).loss
    with torch.no_grad():
        features = method.encode_views(tuple(views))
        p = method.predictor(method.projector(torch.cat(features))).chunk(4)
        z = method.target_projector(method.target_encoder(torch.cat(views[:2]))).chunk(2)
        terms = [L.byol(p[v], z[g]) for g in (0, 1) for v in range(4) if v != g]
    assert len(terms) == 6
    torch.testing.assert_close(loss.detach(), torch.stack(terms).mean())


def test_simclr_with_local_views_is_sup_con_over_image_labels():
    torch.manual_seed(0)
    method = M.SimCLR(encoder(), hidden_dim=16, out_dim=8, temperature=0.5)
    views = crops(sides=(16, 16, 8))
    loss = method(*views).loss
    with torch.no_grad():
        z = method.projector(torch.cat(method.encode_views(tuple(views))))
    torch.testing.assert_close(
        loss.detach(), L.sup_con(z, torch.arange(8).repeat(3), temperature=0.5)
    )


def test_simclr_and_moco_take_the_debiased_and_hard_negative_forms():
    a, b = crops()
    torch.manual_seed(0)
    plain = M.SimCLR(encoder(), hidden_dim=16, out_dim=8)
    torch.manual_seed(0)
    debiased = M.SimCLR(encoder(), hidden_dim=16, out_dim=8, tau_plus=0.1, beta=0.5)
    with torch.no_grad():
        z_a, z_b = debiased.projector(torch.cat(debiased.encode_views((a, b)))).chunk(2)
    expected = L.nt_xent(z_a, z_b, 0.5, tau_plus=0.1, beta=0.5)
    torch.testing.assert_close(debiased(a, b).loss.detach(), expected)
    assert not torch.allclose(plain(a, b).loss, expected)
    torch.manual_seed(0)
    moco = M.MoCo(encoder(), hidden_dim=16, out_dim=8, queue_size=16, tau_plus=0.1)
    with torch.no_grad():
        q = moco.projector(moco.encoder(a))
        k = F.normalize(moco.target_projector(moco.target_encoder(b)), dim=1)
        expected = L.moco(q, k, moco.queue.clone(), 0.2, tau_plus=0.1)
    torch.testing.assert_close(moco(a, b).loss.detach(), expected)


def test_mochi_adds_hard_negatives_from_the_queue_as_constants():
    a, b = crops()
    torch.manual_seed(0)
    moco = M.MoCo(encoder(), hidden_dim=16, out_dim=8, queue_size=16, mochi=(4, 6, 2))
    queue = moco.queue.clone()
    torch.manual_seed(1)
    out = moco(a, b)
    torch.manual_seed(1)
    with torch.no_grad():
        q = moco.projector(moco.encoder(a))
        k = F.normalize(moco.target_projector(moco.target_encoder(b)), dim=1)
        logits = L.moco_logits(q, k, queue, 0.2)
        hard = L.mochi_negatives(q, queue, 4, 6, 2)
        mixed = torch.einsum("nd,nsd->ns", F.normalize(q, dim=1), hard) / 0.2
        all_logits = torch.cat([logits, mixed], dim=1)
    assert all_logits.shape == (8, 1 + 16 + 8)
    expected = F.cross_entropy(all_logits, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(out.loss.detach(), expected)
    out.loss.backward()
    assert all(p.grad is not None for p in moco.encoder.parameters())
    with pytest.raises(ValueError, match="n_hard"):
        M.MoCo(encoder(), queue_size=16, mochi=(32, 1, 1))


@pytest.mark.parametrize("name", ["nnclr", "moco_v3"])
def test_two_view_catalogue_methods_refuse_local_views(name):
    with pytest.raises(ValueError, match="exactly two views"):
        M.make(name, encoder())(*crops(sides=(16, 16, 8)))


def test_memory_bank_classifies_each_instance_against_sampled_bank_rows_then_updates_it():
    torch.manual_seed(0)
    method = M.MemoryBank(encoder(), num_instances=20, out_dim=8, num_negatives=5)
    a, b = crops()
    index = torch.tensor([3, 0, 7, 19, 11, 4, 5, 6])
    bank = method.bank.clone()
    torch.manual_seed(5)
    out = method(a, b, index=index)
    torch.manual_seed(5)
    negatives = torch.randint(20, (5,))  # one draw shared by the batch
    with torch.no_grad():
        f = F.normalize(method.projector(torch.cat(method.encode_views((a, b)))), dim=1)
    total = 0.0
    for view in range(2):
        for i in range(8):  # a loop over queries: positive first, then the sampled rows
            q = f[view * 8 + i]
            logits = torch.stack([q @ bank[index[i]]] + [q @ bank[j] for j in negatives]) / 0.07
            total -= torch.log_softmax(logits, dim=0)[0]
    torch.testing.assert_close(out.loss.detach(), total / 16)
    expected_rows = F.normalize(0.5 * bank[index] + 0.5 * f[:8], dim=1)
    torch.testing.assert_close(method.bank[index], expected_rows)
    untouched = torch.ones(20, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(method.bank[untouched], bank[untouched])
    out.loss.backward()  # the bank is a constant: gradients reach the encoder and projector only
    assert all(p.grad is not None for p in method.parameters())
    with pytest.raises(ValueError, match="needs index="):
        method(a, b)
    with pytest.raises(ValueError, match="outside the bank's 20 rows"):
        method(a, b, index=torch.arange(8) + 15)


def test_memory_bank_in_sb3_needs_the_replay_slots_of_rlreps_buffer():
    from stable_baselines3 import SAC

    from rlrep import envs
    from rlrep.sb3 import FrameStackReplayBuffer, policy_kwargs

    def sac(buffer_class, num_instances):
        kwargs = {"num_instances": num_instances, "out_dim": 8, "num_negatives": 8}
        return SAC(
            "CnnPolicy",
            envs.PointMassPixels(image_size=24, frame_stack=3),
            buffer_size=100,
            learning_starts=20,
            batch_size=8,
            replay_buffer_class=buffer_class,
            policy_kwargs=policy_kwargs(
                method="memory_bank", method_kwargs=kwargs, net_arch=[16],
                encoder_kwargs={"num_filters": 4, "num_layers": 2},
            ),
        )  # fmt: skip

    with pytest.raises(ValueError, match="FrameStackReplayBuffer"):
        sac(None, 100).learn(24)
    with pytest.raises(ValueError, match="'num_instances': 100"):
        sac(FrameStackReplayBuffer, 50).learn(24)
    model = sac(FrameStackReplayBuffer, 100)
    model.learn(24)
    bank = model.policy.critic.features_extractor.objective.method.bank
    before = bank.clone()
    samples = model.replay_buffer.sample(8)
    slots = model.replay_buffer.last_sample_slots  # one env: a slot is a buffer position
    torch.testing.assert_close(
        samples.actions, torch.as_tensor(model.replay_buffer.actions[slots, 0])
    )
    model.train(gradient_steps=1, batch_size=8)
    slots = model.replay_buffer.last_sample_slots
    assert slots.max() < 24  # sampled among the filled slots
    moved = (bank != before).any(dim=1)
    assert torch.equal(moved, torch.zeros(100, dtype=torch.bool).index_fill(0, slots, True))
