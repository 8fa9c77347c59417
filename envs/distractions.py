"""Visual distractions for DMC pixels after DMC-GB (Hansen & Wang 2021) and the Distracting
Control Suite (Stone et al. 2021). They change only what is drawn and use their own generator, so
states, rewards and the task's random state stay the clean env's; each reset draws relative to the
defaults copied at construction.

- ``color_easy`` / ``color_hard``: agent (materials of geoms on moving bodies, else their rgba;
  textured ones are tinted), floor and sky colours: easy moves each default channel by U(±0.2),
  hard draws U(0, 1). A texture is mapped per channel by the affine map sending its darkest and
  brightest values to two drawn colours (the floor's two checker colours; the sky's black and its
  white stars), so a checker stays a checker and a gradient a gradient.
- ``video_easy`` / ``video_hard``: background pixels show a clip (10 clips / 100), one frame per
  observation, looping. The frame is rendered as the clean env renders it (multisampling on),
  and a segmentation render (no lighting or shadows: ~6 ms against ~35 ms at 84 px on a CPU) says
  which pixels are sky (and floor, hard): exactly those are replaced, so a distracted frame
  differs from the clean one only there.
- ``camera_easy`` / ``camera_hard``: the camera orbits the point it looks at (the agent's distance
  along its view axis): azimuth, elevation and roll within ±s·90°, distance × U(1 − 0.5s,
  1 + 1.5s), s = 0.1 / 0.3 (Distracting Control's ranges), on or above the horizontal plane through
  that point (their upper quadrant) unless the camera looks straight down (reacher).
"""

from __future__ import annotations

import abc
import os
from typing import Any

import numpy as np

from rlrep.envs.backgrounds import FolderVideos, ProceduralVideos

__all__ = [
    "DISTRACTIONS", "CameraDistraction", "ColorDistraction", "Distraction",
    "VideoBackground", "check_distraction", "distraction_rng", "floor_geoms", "make_distraction",
]  # fmt: skip

#: The valid ``distraction`` names.
DISTRACTIONS = (
    "color_easy", "color_hard", "video_easy", "video_hard", "camera_easy", "camera_hard",
)  # fmt: skip
_STREAM = 14  # the distraction generator's stream beside the seed: apart from the task's RNG
_CAMERA_SCALE = {"easy": 0.1, "hard": 0.3}  # Distracting Control's difficulty scales
_CLIPS = {"easy": 10, "hard": 100}
# MuJoCo's mjGEOM_PLANE, mjTEXTURE_SKYBOX, mjTEXROLE_RGB: importing mujoco at module import would
# fix its GL backend before make_dmc picks one.
_PLANE, _SKYBOX, _RGB_ROLE = 0, 2, 1
_GEOM = 5  # mjOBJ_GEOM, a segmentation render's object type of geoms


def check_distraction(
    name: str | None, background_dir: Any = None, from_pixels: bool = True
) -> None:
    """Validate ``make_dmc``'s distraction arguments before any model is built.

    :raises ValueError: unknown name, a distraction without pixels, ``background_dir`` without a
        video distraction.
    """
    if name is None:
        if background_dir is not None:
            raise ValueError("background_dir needs distraction='video_easy' or 'video_hard'")
        return
    if name not in DISTRACTIONS:
        raise ValueError(f"unknown distraction {name!r}; valid: {', '.join(DISTRACTIONS)}")
    if not from_pixels:
        raise ValueError(f"distraction {name!r} changes pixels only; it needs from_pixels=True")
    if background_dir is not None and not name.startswith("video"):
        raise ValueError(f"background_dir is used by video_easy/video_hard only, not {name!r}")


def distraction_rng(seed: int | None) -> np.random.Generator:
    """The distraction generator of an env seeded with ``seed`` (fresh entropy for ``None``)."""
    return np.random.default_rng(None if seed is None else np.random.SeedSequence([seed, _STREAM]))


# --- model helpers --------------------------------------------------------------------------------
def _rgb_texture(model: Any, material: int) -> int:
    if material < 0:
        return -1
    ids = model.mat_texid[material]  # one id per texture role in MuJoCo ≥ 3.2, one id before
    return int(ids[_RGB_ROLE] if np.ndim(ids) else ids)


def floor_geoms(model: Any) -> np.ndarray:
    """The ground: planes of the world body with a textured material (the grid floor; also
    manipulator's and stacker's walls and backdrop). Untextured planes (reacher's and
    point_mass's arena walls) are scenery, not ground."""
    planes = np.flatnonzero((model.geom_bodyid == 0) & (model.geom_type == _PLANE))
    textured = [g for g in planes if _rgb_texture(model, model.geom_matid[g]) >= 0]
    return np.array(textured, dtype=np.int64)


def _sky_textures(model: Any) -> list[int]:
    return [int(t) for t in np.flatnonzero(model.tex_type == _SKYBOX)]


def _texels(model: Any, tex: int) -> np.ndarray:
    """A writable ``(texels, channels)`` view of one texture's data."""
    start, channels = model.tex_adr[tex], model.tex_nchannel[tex]
    size = model.tex_width[tex] * model.tex_height[tex] * channels
    return model.tex_data[start : start + size].reshape(-1, channels)


def _upload(physics: Any, textures: list[int]) -> None:
    """Send changed textures to the GL context (it keeps its own copy, made at creation)."""
    import mujoco

    with physics.contexts.gl.make_current() as ctx:
        for tex in textures:
            ctx.call(mujoco.mjr_uploadTexture, physics.model.ptr, physics.contexts.mujoco.ptr, tex)


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


# --- the modes --------------------------------------------------------------------------------
class Distraction(abc.ABC):
    """One mode on one env's physics: :meth:`reset` draws an episode (``self.draw``: arrays and
    JSON values) and applies it, :meth:`advance` moves one observation frame on,
    :meth:`composite` edits a rendered frame."""

    def __init__(self, name: str, physics: Any, seed: int | None) -> None:
        self.name, self.physics = name, physics
        self.level = name.rsplit("_", 1)[1]  # "easy" or "hard"
        self.draw: dict[str, Any] = {}
        self.seed(seed)

    def seed(self, seed: int | None) -> None:
        """Reseed the generator as ``make_dmc(seed=seed)`` does (``reset(seed=…)``)."""
        self.rng = distraction_rng(seed)

    @abc.abstractmethod
    def reset(self) -> None:
        """Draw and apply a new episode's distraction."""

    @abc.abstractmethod
    def apply(self) -> None:
        """Put ``self.draw`` into the physics."""

    def advance(self) -> None:  # noqa: B027 (a no-op by default: only videos move)
        """One observation frame later."""

    def composite(self, image: np.ndarray) -> np.ndarray:
        """A rendered ``(H, W, 3)`` frame as the agent sees it (edited in place)."""
        return image

    def get_state(self) -> dict[str, Any]:
        """The generator's state and the current episode's draw."""
        draw = {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in self.draw.items()}
        return {"rng": self.rng.bit_generator.state, **draw}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` and apply the episode's draw."""
        self.rng.bit_generator.state = state["rng"]
        draw = {k: v for k, v in state.items() if k != "rng"}  # arrays, or ints (a clip, a frame)
        self.draw = {
            k: int(v) if np.ndim(v) == 0 else np.array(v, np.float64) for k, v in draw.items()
        }
        self.apply()


class ColorDistraction(Distraction):
    """``color_easy`` / ``color_hard``: agent, floor and sky colours (see the module docstring)."""

    def __init__(self, name: str, physics: Any, seed: int | None) -> None:
        super().__init__(name, physics, seed)
        m = physics.model.ptr
        agent = np.flatnonzero(m.geom_bodyid > 0)
        floor_mats = {int(m.geom_matid[g]) for g in floor_geoms(m)}
        mats = {int(m.geom_matid[g]) for g in agent} - {-1} - floor_mats
        self._mats = np.array(sorted(mats), dtype=np.int64)
        self._geoms = agent[m.geom_matid[agent] < 0]
        self._textures = sorted({_rgb_texture(m, i) for i in floor_mats}) + _sky_textures(m)
        self._texels = [_texels(m, t)[:, :3].copy() for t in self._textures]  # the defaults
        self._tex_keys = [np.stack([t.min(0), t.max(0)]) / 255.0 for t in self._texels]
        rgb = [m.mat_rgba[self._mats, :3], m.geom_rgba[self._geoms, :3], *self._tex_keys]
        self._defaults = np.concatenate(rgb).astype(np.float64)
        self.draw = {"colors": self._defaults.copy()}

    def reset(self) -> None:
        shape = self._defaults.shape
        if self.level == "easy":  # each default channel moved by U(±0.2)
            self.draw = {
                "colors": np.clip(self._defaults + self.rng.uniform(-0.2, 0.2, shape), 0, 1)
            }
        else:
            self.draw = {"colors": self.rng.uniform(0.0, 1.0, shape)}
        self.apply()

    def apply(self) -> None:
        m, colors = self.physics.model.ptr, self.draw["colors"]
        n_mats, n_geoms = len(self._mats), len(self._geoms)
        m.mat_rgba[self._mats, :3] = colors[:n_mats]
        m.geom_rgba[self._geoms, :3] = colors[n_mats : n_mats + n_geoms]
        levels = np.arange(256) / 255.0
        for i, tex in enumerate(self._textures):
            (lo, hi), start, out = self._tex_keys[i], n_mats + n_geoms + 2 * i, _texels(m, tex)
            new_lo, new_hi = colors[start : start + 2]
            for c in range(3):  # a lookup table per channel: the affine map lo→new_lo, hi→new_hi
                span = hi[c] - lo[c]
                weight = (levels - lo[c]) / span if span > 0 else np.zeros(256)
                lut = np.clip(new_lo[c] + weight * (new_hi[c] - new_lo[c]), 0.0, 1.0)
                out[:, c] = np.round(lut * 255).astype(np.uint8)[self._texels[i][:, c]]
        _upload(self.physics, self._textures)


class CameraDistraction(Distraction):
    """``camera_easy`` / ``camera_hard``: the camera's pose per episode (module docstring).

    Fixed and target cameras move through ``cam_pos``/``cam_quat`` (in their body's frame;
    target cameras keep MuJoCo's look-at orientation), tracking cameras through
    ``cam_pos0``/``cam_poscom0`` and ``cam_mat0`` (world frame). Cameras feed no dynamics.
    """

    def __init__(self, name: str, physics: Any, camera_id: int, seed: int | None) -> None:
        import mujoco

        super().__init__(name, physics, seed)
        m, self.camera_id = physics.model.ptr, camera_id
        if not 0 <= camera_id < m.ncam:
            raise ValueError(
                f"{name} moves a model camera: camera_id 0..{m.ncam - 1}, not {camera_id}"
            )
        # As ints: the model's cam_mode holds ints, which do not hash like the enum members.
        track = {int(mujoco.mjtCamLight.mjCAMLIGHT_TRACK): "cam_pos0"}
        track[int(mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)] = "cam_poscom0"
        self._field = track.get(int(m.cam_mode[camera_id]))
        if self._field is None:
            pos, rot = m.cam_pos[camera_id].copy(), np.empty(9)
            mujoco.mju_quat2Mat(rot, m.cam_quat[camera_id])
        else:
            pos, rot = getattr(m, self._field)[camera_id].copy(), m.cam_mat0[camera_id].copy()
        self._rot0 = rot.reshape(3, 3)
        # Distracting Control's pivot: the agent's distance along the view axis (at qpos0).
        data = mujoco.MjData(m)
        for stage in (mujoco.mj_kinematics, mujoco.mj_comPos, mujoco.mj_camlight):
            stage(m, data)
        agent = data.subtree_com[min(1, m.nbody - 1)]
        dist = float(np.linalg.norm(data.cam_xpos[camera_id] - agent)) or 1.0
        self._offset = dist * self._rot0[:, 2]  # camera − pivot: the view axis is −z
        self._pivot = pos - self._offset
        x, y, z = self._offset
        self._sphere0 = np.array([dist, np.arctan2(y, x), np.arctan2(np.hypot(x, y), z)])
        up = np.cross([0.0, 0.0, 1.0], self._offset)
        norm = np.linalg.norm(up)
        self._tilt_axis = up / norm if norm > 1e-9 * dist else self._rot0[:, 0]
        self.draw = {"pose": np.array([*self._sphere0, 0.0])}  # radius, azimuth, polar, roll

    def ranges(self) -> np.ndarray:
        """``(4, 2)`` bounds of radius, azimuth, polar angle (from +z) and roll."""
        scale = _CAMERA_SCALE[self.level]
        (r, h, v), delta = self._sphere0, scale * np.pi / 2
        v_lo = v - delta if v < 1e-6 else max(v - delta, 0.0)  # straight down: tilt either way
        v_hi = max(v, min(v + delta, np.pi / 2))  # not below the pivot's horizon
        radius = [r * (1 - 0.5 * scale), r * (1 + 1.5 * scale)]
        return np.array([radius, [h - delta, h + delta], [v_lo, v_hi], [-delta, delta]])

    def reset(self) -> None:
        bounds = self.ranges()
        self.draw = {"pose": self.rng.uniform(bounds[:, 0], bounds[:, 1])}
        self.apply()

    def apply(self) -> None:
        import mujoco

        (r, h, v, roll), (r0, h0, v0) = self.draw["pose"], self._sphere0
        z = np.array([0.0, 0.0, 1.0])
        turn = _rotation(z, h - h0) @ _rotation(self._tilt_axis, v - v0)  # keeps the look-at
        rot = turn @ self._rot0 @ _rotation(z, roll)  # roll about the view axis
        pos = self._pivot + (r / r0) * (turn @ self._offset)
        m, cid = self.physics.model.ptr, self.camera_id
        if self._field is None:
            m.cam_pos[cid] = pos
            mujoco.mju_mat2Quat(m.cam_quat[cid], rot.ravel())
        else:
            getattr(m, self._field)[cid] = pos
            m.cam_mat0[cid] = rot.ravel()
        mujoco.mj_camlight(m, self.physics.data.ptr)  # the camera's data now, not at next step


class VideoBackground(Distraction):
    """``video_easy`` (sky) / ``video_hard`` (sky and floor): background pixels from clips."""

    def __init__(
        self,
        name: str,
        physics: Any,
        camera_id: int,
        image_size: int,
        background_dir: Any,
        seed: int | None,
    ) -> None:
        super().__init__(name, physics, seed)
        clips = None if background_dir is not None and self.level == "hard" else _CLIPS[self.level]
        self.source: ProceduralVideos | FolderVideos = (
            ProceduralVideos(clips, image_size)
            if background_dir is None
            else FolderVideos(background_dir, image_size, clips)
        )
        self.camera_id = camera_id
        self._floors = floor_geoms(physics.model.ptr) if self.level == "hard" else np.empty(0)
        self.draw, self._loaded = {"clip": 0, "position": 0}, (-1, np.empty(0))

    def reset(self) -> None:
        clip = int(self.rng.integers(len(self.source.lengths)))
        self.draw = {"clip": clip, "position": int(self.rng.integers(self.source.lengths[clip]))}
        self.apply()

    def apply(self) -> None:
        if self._loaded[0] != self.draw["clip"]:  # one clip in memory, loaded once per episode
            self._loaded = (self.draw["clip"], self.source.load(self.draw["clip"]))

    def advance(self) -> None:
        self.draw["position"] = (self.draw["position"] + 1) % len(self._loaded[1])

    def background(self) -> np.ndarray:
        """The clip frame behind the current observation frame."""
        self.apply()  # before the first reset
        return self._loaded[1][self.draw["position"]]

    def background_mask(self, height: int, width: int) -> np.ndarray:
        """``(H, W)`` bool: the pixels the clip replaces, from a segmentation render: no geom
        (the sky), and for hard the floor's geoms."""
        seg = self.physics.render(height, width, camera_id=self.camera_id, segmentation=True)
        mask = seg[..., 0] == -1
        if self._floors.size:
            mask |= (seg[..., 1] == _GEOM) & np.isin(seg[..., 0], self._floors)
        return mask

    def composite(self, image: np.ndarray) -> np.ndarray:
        mask = self.background_mask(*image.shape[:2])
        image[mask] = self.background()[mask]
        return image


def make_distraction(
    name: str,
    physics: Any,
    *,
    camera_id: int,
    image_size: int,
    background_dir: str | os.PathLike | None = None,
    seed: int | None = None,
) -> Distraction:
    """The distraction ``name`` on a dm_control ``physics`` (changes its model at once).

    :param name: one of :data:`DISTRACTIONS`.
    :param physics: the env's ``dm_control.mujoco.Physics``, before its first render.
    :param camera_id: the rendering camera (moved by the camera modes).
    :param image_size: side of the rendered frames (clips are made or resized to it).
    :param background_dir: a user's clips for the video modes; ``None``: procedural clips.
    :param seed: the env's seed; the generator is ``SeedSequence([seed, 14])``.
    """
    check_distraction(name, background_dir)
    if name.startswith("color"):
        return ColorDistraction(name, physics, seed)
    if name.startswith("camera"):
        return CameraDistraction(name, physics, camera_id, seed)
    return VideoBackground(name, physics, camera_id, image_size, background_dir, seed)
