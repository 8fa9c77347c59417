"""Visual distractions of ``make_dmc`` (:mod:`rlrep.envs.distractions`): seeded, pixels only (the
physics is the clean env's), the background replaced exactly where a segmentation render says,
clip sources, and checkpoints that resume bit for bit.

Frames are 48×48 with one frame per observation: rendering costs ~10–30 ms a frame on a CPU.
"""

import json

import numpy as np
import pytest

from rlrep import envs
from rlrep.agents.run_state import _join, _split
from rlrep.envs.backgrounds import FolderVideos, ProceduralVideos

TASK, SIZE, SEED = "cartpole-swingup", 48, 3
MODES = envs.DISTRACTIONS


def make(distraction=None, seed=SEED, task=TASK, **kwargs):
    return envs.make_dmc(
        task, image_size=SIZE, frame_stack=1, seed=seed, distraction=distraction, **kwargs
    )


def actions(n, seed=0, dim=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, dim)).astype(np.float32)


def draw(env):
    """The current episode's draw, comparable with ``==`` as one tuple."""
    state = env.unwrapped._distraction.get_state()
    return tuple(np.asarray(v).tobytes() for k, v in sorted(state.items()) if k != "rng")


def through_a_checkpoint(state):
    """``state`` after the trip a training checkpoint makes: JSON tree + arrays, no pickle."""
    arrays = {}
    tree = json.loads(json.dumps(_split(state, arrays, "env")))
    return _join(tree, {k: np.array(v) for k, v in arrays.items()})


@pytest.fixture(scope="module")
def clean_run():
    env = make()
    obs, info = env.reset()
    steps = [env.step(a) for a in actions(20)]
    run = {"obs": obs, "state": info["state"], "steps": steps, "end": env.get_state()}
    env.close()
    return run


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_frames_and_the_clean_physics(mode, clean_run):
    a, b = make(mode), make(mode)
    obs_a, info = a.reset()
    assert np.array_equal(obs_a, b.reset()[0])
    assert not np.array_equal(obs_a, clean_run["obs"])  # the distraction shows
    np.testing.assert_array_equal(info["state"], clean_run["state"])
    for act, (_, reward, terminated, truncated, clean_info) in zip(
        actions(20), clean_run["steps"], strict=True
    ):
        obs_a, r, term, trunc, info = a.step(act)
        assert np.array_equal(obs_a, b.step(act)[0])
        np.testing.assert_array_equal(info["state"], clean_info["state"])
        assert (r, term, trunc) == (reward, terminated, truncated)
    end, clean_end = a.get_state(), clean_run["end"]
    np.testing.assert_array_equal(end["mj_state"], clean_end["mj_state"])
    task_random, clean_random = end["task_random"], clean_end["task_random"]
    assert all(np.array_equal(task_random[k], clean_random[k]) for k in clean_random)  # untouched
    a.close(), b.close()


@pytest.mark.parametrize("mode", MODES)
def test_reset_seed_reseeds_and_each_episode_starts_from_the_defaults(mode):
    env = make(mode)
    first, _ = env.reset(seed=5)
    first_draw = draw(env)
    for act in actions(2):
        env.step(act)
    env.reset()
    assert draw(env) != first_draw  # a new episode, a new draw
    again, _ = env.reset(seed=5)
    assert draw(env) == first_draw
    assert np.array_equal(again, first)  # drawn from the defaults, not on top of the last draw
    env.reset(seed=6)
    assert draw(env) != first_draw  # another seed, another distraction
    env.close()


@pytest.mark.parametrize("mode", MODES)
def test_checkpoint_mid_episode_resumes_bit_for_bit(mode):
    a = make(mode)
    a.reset()
    for act in actions(3):
        a.step(act)
    b = make(mode, seed=99)  # a fresh env with another seed: everything must come from the state
    b.set_state(through_a_checkpoint(a.get_state()))
    for act in actions(3, seed=1):
        assert np.array_equal(a.step(act)[0], b.step(act)[0])
    assert np.array_equal(a.reset()[0], b.reset()[0])  # the distraction generator resumed too
    act = actions(1, seed=2)[0]
    assert np.array_equal(a.step(act)[0], b.step(act)[0])
    a.close(), b.close()


@pytest.mark.parametrize("mode", ["color_easy", "color_hard"])
def test_colour_modes_recolour_agent_floor_and_sky_each_episode(mode):
    env = make(mode)
    model = env.unwrapped._env.physics.model
    grid, sky = model.name2id("grid", "texture"), model.name2id("skybox", "texture")

    def colours():
        texels = [
            model.tex_data[model.tex_adr[t] : model.tex_adr[t] + 3 * 1000].copy()
            for t in (grid, sky)
        ]
        return [model.mat_rgba[model.name2id("self", "material")].copy(), *texels]

    defaults = colours()
    env.reset()
    episode_1 = colours()
    env.reset()
    episode_2 = colours()
    for default, one, two in zip(defaults, episode_1, episode_2, strict=True):
        assert not np.array_equal(one, default) and not np.array_equal(one, two)
    if mode == "color_easy":  # each channel within ±0.2 of its default
        assert np.abs(episode_2[0][:3] - defaults[0][:3]).max() <= 0.2 + 1e-6
        assert np.abs(episode_2[1].astype(int) - defaults[1]).max() <= 0.2 * 255 + 1
    env.close()


def _floor_mask(physics, seg):
    floor = physics.model.name2id("floor", "geom")
    return (seg[..., 1] == 5) & (seg[..., 0] == floor)  # 5: mjOBJ_GEOM


@pytest.mark.parametrize("task", ["cartpole-swingup", "walker-walk"])
@pytest.mark.parametrize("mode", ["video_easy", "video_hard"])
def test_video_replaces_exactly_the_background(mode, task):
    env, clean = make(mode, task=task), make(task=task)
    physics = clean.unwrapped._env.physics  # the clean env as it is (multisampling on)
    observations = []
    for t, act in enumerate(actions(4, dim=env.action_space.shape[0])):
        obs, clean_obs = (env.reset()[0], clean.reset()[0]) if t == 0 else (
            env.step(act)[0], clean.step(act)[0])  # fmt: skip
        seg = physics.render(SIZE, SIZE, camera_id=0, segmentation=True)  # the oracle
        sky, floor = seg[..., 0] == -1, _floor_mask(physics, seg)
        assert sky.any() and floor.any() and not (sky | floor).all()
        background = sky | floor if mode == "video_hard" else sky
        clip = env.unwrapped._distraction.background()
        expected = np.where(background[..., None], clip, clean_obs.transpose(1, 2, 0))
        np.testing.assert_array_equal(obs.transpose(1, 2, 0), expected)
        observations.append(obs.tobytes())
    assert len(set(observations)) == len(observations)  # the clip moves
    env.close(), clean.close()


@pytest.mark.parametrize("mode", ["camera_easy", "camera_hard"])
def test_camera_orbits_the_point_it_looked_at_within_the_ranges(mode):
    import mujoco

    env = make(mode)
    physics = env.unwrapped._env.physics
    # Cartpole's camera at (0, -4, 1) looks along +y; it pivots at the distance of the cart's
    # subtree COM (Distracting Control's choice), taken at qpos0.
    default, model = np.array([0.0, -4.0, 1.0]), physics.model.ptr
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    radius = np.linalg.norm(default - data.subtree_com[1])
    pivot = default + radius * np.array([0.0, 1.0, 0.0])
    scale = {"camera_easy": 0.1, "camera_hard": 0.3}[mode]
    positions = []
    for seed in range(6):
        env.reset(seed=seed)
        pos, rot = physics.data.cam_xpos[0].copy(), physics.data.cam_xmat[0].reshape(3, 3)
        to_pivot = pivot - pos
        distance = np.linalg.norm(to_pivot)
        assert radius * (1 - 0.5 * scale) - 1e-9 <= distance <= radius * (1 + 1.5 * scale) + 1e-9
        np.testing.assert_allclose(-rot[:, 2], to_pivot / distance, atol=1e-9)  # looks at it
        assert pos[2] >= pivot[2] - 1e-9  # never below the pivot's horizon
        angle = np.arccos(np.dot(-to_pivot / distance, (default - pivot) / radius))
        assert angle <= np.sqrt(2) * scale * np.pi / 2 + 1e-9
        positions.append(pos)
    assert len({p.tobytes() for p in positions}) == len(positions)
    env.close()


@pytest.mark.parametrize("mode", ["camera_easy", "camera_hard"])
def test_camera_modes_move_a_tracking_camera_which_keeps_tracking(mode):
    # Walker's camera 0 follows the walker's centre of mass (mjCAMLIGHT_TRACKCOM).
    clean, moved = make(task="walker-walk"), make(mode, task="walker-walk")
    clean.reset(seed=1)
    moved.reset(seed=1)
    pc, pm = clean.unwrapped._env.physics, moved.unwrapped._env.physics
    body = pm.model.cam_bodyid[0]
    offsets = []
    for a in actions(5, dim=6):
        frame_clean, frame_moved = clean.step(a)[0], moved.step(a)[0]
        assert not np.allclose(pm.data.cam_xpos[0], pc.data.cam_xpos[0])
        assert not np.allclose(pm.data.cam_xmat[0], pc.data.cam_xmat[0])
        assert not np.array_equal(frame_clean, frame_moved)
        offsets.append(pm.data.cam_xpos[0] - pm.data.subtree_com[body])
    np.testing.assert_allclose(offsets, np.broadcast_to(offsets[0], (5, 3)), atol=1e-9)
    clean.close()
    moved.close()


def test_procedural_clips_are_deterministic_and_move():
    clips = ProceduralVideos(10, 32, seed=0, length=20)
    clip = clips.load(3)
    assert clip.shape == (20, 32, 32, 3) and clip.dtype == np.uint8
    assert np.array_equal(clip, ProceduralVideos(10, 32, seed=0, length=20).load(3))
    assert not np.array_equal(clip, clips.load(4))
    assert not np.array_equal(clip, ProceduralVideos(10, 32, seed=1, length=20).load(3))
    assert all(not np.array_equal(clip[t], clip[t + 1]) for t in range(19))
    assert len(np.unique(clip[0].reshape(-1, 3), axis=0)) > 50  # noise, not a flat colour


def _user_clips(root, n_npy=1):
    """``a_png/``: 3 PNG frames 20×30 of flat colours; ``b*.npy``: 4 frames 16×16 each."""
    from PIL import Image

    (root / "a_png").mkdir()
    colours = {}
    for t in range(3):
        colours[0, t] = (10 * t + 1, 100, 200)
        Image.fromarray(np.full((20, 30, 3), colours[0, t], np.uint8)).save(
            root / "a_png" / f"{t:03d}.png"
        )
    for i in range(n_npy):
        frames = np.zeros((4, 16, 16, 3), np.uint8)
        for t in range(4):
            frames[t] = colours[1 + i, t] = (200, 10 * t + 1 + i, 50)
        np.save(root / f"b{i:02d}.npy", frames)
    return colours


def test_user_folder_of_pngs_and_npy_clips(tmp_path):
    colours = _user_clips(tmp_path)
    clips = FolderVideos(tmp_path, SIZE)
    assert clips.lengths == [3, 4]
    assert np.array_equal(clips.load(0)[2], np.full((SIZE, SIZE, 3), colours[0, 2], np.uint8))
    assert np.array_equal(clips.load(1)[3], np.full((SIZE, SIZE, 3), colours[1, 3], np.uint8))
    env = make("video_hard", background_dir=tmp_path, render_mode="rgb_array")
    seen = set()
    for seed in range(6):  # seed 5 draws clip 0, the others clip 1
        obs, _ = env.reset(seed=seed)
        clip, start = env.unwrapped._distraction.draw.values()
        seen.add(clip)
        for t in range(1, 6):  # one clip frame per observation, looping
            obs = env.step(actions(1)[0])[0]
            position = (start + t) % clips.lengths[clip]
            assert tuple(obs[:, 0, 0]) == colours[clip, position]  # a sky corner
        assert np.array_equal(env.render(), obs.transpose(1, 2, 0))  # render() shows it too
    assert seen == {0, 1}
    env.close()


def test_video_easy_takes_the_first_ten_user_clips(tmp_path):
    _user_clips(tmp_path, n_npy=11)
    assert len(FolderVideos(tmp_path, SIZE, max_clips=10).lengths) == 10
    env = make("video_easy", background_dir=tmp_path)
    assert len(env.unwrapped._distraction.source.lengths) == 10
    env.close()


@pytest.mark.parametrize(
    "layout", ["missing", "empty", "loose_images", "empty_clip", "npy_3d", "npy_float"]
)
def test_a_wrong_folder_layout_explains_the_expected_one(tmp_path, layout):
    from PIL import Image

    root = tmp_path / "clips"
    if layout != "missing":
        root.mkdir()
    if layout == "loose_images":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "0.png")
    if layout == "empty_clip":
        (root / "clip").mkdir()
    if layout.startswith("npy"):
        np.save(root / "c.npy", np.zeros((2, 8, 8) if layout == "npy_3d" else (2, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"sub-folder of image frames .* \(T, H, W, 3\)"):
        FolderVideos(root, SIZE)
    if layout == "empty":
        with pytest.raises(ValueError, match="holds no clips"):
            make("video_easy", background_dir=root)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distraction": "color_medium"}, "unknown distraction 'color_medium'; valid: "
         + ", ".join(MODES)),
        ({"distraction": "video_easy", "from_pixels": False}, "needs from_pixels=True"),
        ({"distraction": "color_easy", "background_dir": "."}, "video_easy/video_hard only"),
        ({"background_dir": "."}, "background_dir needs distraction="),
        ({"distraction": "camera_hard", "camera_id": -1}, "moves a model camera"),
    ],
)  # fmt: skip
def test_bad_distraction_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        envs.make_dmc(TASK, **kwargs)
