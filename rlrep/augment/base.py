"""Input checks, random draws and the train/eval contract shared by every augmentation.

Every augmentation takes a batch ``(B, C, H, W)`` of ``uint8`` pixels in [0, 255] or floats in
[0, 1], draws its random parameters per sample on the batch's device and returns a batch of the
same dtype. In ``.eval()`` mode it returns the deterministic view (center crop, identity for
photometric ones), so the policy sees at test time what it saw on average in training.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import math
import numbers
from collections.abc import Iterator

import torch
from torch import nn

__all__ = [
    "PIXEL_RANGE_TOLERANCE",
    "Augmentation",
    "PixelRangeError",
    "Sampler",
    "SeededGenerators",
    "check_frame_channels",
    "check_images",
    "check_pixel_range",
    "check_probability",
    "check_size_int",
    "frames_back",
    "from_float",
    "infer_frame_channels",
    "per_frame",
    "pixel_range_checked",
    "repeat_frames",
    "to_float",
]

#: Float pixels may overshoot [0, 1] by this much (rounding of resampling, ``/ 255`` in float16).
PIXEL_RANGE_TOLERANCE = 1e-3

_RANGE_CHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rlrep_pixel_range_checked", default=False
)


class PixelRangeError(ValueError):
    """Float images outside [0, 1] (e.g. raw 0–255 floats). ``low``/``high``: the values seen."""

    def __init__(self, message: str, low: float, high: float) -> None:
        super().__init__(message)
        self.low, self.high = low, high


def check_pixel_range(
    x: torch.Tensor, name: str = "images", fix: str = "divide by 255 or pass uint8"
) -> None:
    """Raise :class:`PixelRangeError` if float images ``x`` hold values outside [0, 1].

    One ``torch.aminmax`` pass and one host sync, for floating dtypes only (uint8 cannot be out
    of range); skipped inside :func:`pixel_range_checked`. NaN pixels fail too.

    :param x: ``(B, C, H, W)`` batch.
    :param name: what the caller calls it, for the message.
    :param fix: what the user should do, for the message.
    """
    if not x.is_floating_point() or x.numel() == 0 or _RANGE_CHECKED.get():
        return
    low, high = torch.stack(torch.aminmax(x.detach())).tolist()
    tol = PIXEL_RANGE_TOLERANCE
    if not (low >= -tol and high <= 1.0 + tol):  # written so that NaN fails
        raise PixelRangeError(
            f"{name}: expected uint8 images in [0, 255] or float images in [0, 1], got float "
            f"values in [{low:g}, {high:g}]; {fix}",
            low,
            high,
        )


@contextlib.contextmanager
def pixel_range_checked() -> Iterator[None]:
    """Within this block :func:`check_pixel_range` does nothing: for a caller that has checked
    the batch once and passes views of it through augmentations and encoders (one ``aminmax`` and
    one host sync per call instead of one per module)."""
    token = _RANGE_CHECKED.set(True)
    try:
        yield
    finally:
        _RANGE_CHECKED.reset(token)


def check_size_int(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` >= ``minimum`` (``84``, ``84.0``, ``np.int64(84)``), or
    ``ValueError`` naming ``name`` (``0``, ``-4``, ``84.5``, ``"84"``, ``True``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        ok = False
    elif isinstance(value, numbers.Integral):
        ok = True
    else:
        ok = math.isfinite(value) and float(value).is_integer()
    if not ok or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (pixels), got {value!r}")
    return int(value)


def check_probability(p: object, name: str) -> float:
    """``p`` as a float in [0, 1], or ``ValueError`` naming ``name``."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def infer_frame_channels(channels: int) -> int:
    """Channels per stacked frame when nothing says otherwise: 3 (RGB) if ``channels`` is a
    multiple of 3, else 1 (grayscale, e.g. SB3's Atari stacks of 4). A multiple of 3 may also be
    3·k grayscale frames: pass ``frame_channels=1`` explicitly for those."""
    return 3 if channels % 3 == 0 else 1


def check_frame_channels(frame_channels: object, channels: int | None = None) -> int:
    """``frame_channels`` as an int (1: grayscale, 3: RGB), or ``ValueError`` with the fix;
    with ``channels``, also require a whole number of frames."""
    if frame_channels not in (1, 3) or isinstance(frame_channels, bool):
        raise ValueError(
            f"frame_channels must be 3 (RGB frames) or 1 (grayscale frames, e.g. Atari), got "
            f"{frame_channels!r}"
        )
    if channels is not None and channels % frame_channels:
        raise ValueError(
            f"{channels} channels are not a whole number of {frame_channels}-channel frames; "
            f"pass frame_channels={infer_frame_channels(channels)} (3: RGB, 1: grayscale)"
        )
    return int(frame_channels)


def check_images(x: torch.Tensor, name: str = "images", frames: bool = False) -> None:
    """Raise ``ValueError`` unless ``x`` is a non-empty channel-first batch ``(B, C, H, W)`` of
    uint8 pixels or floats in [0, 1] (:func:`check_pixel_range`).

    :param x: the batch to check.
    :param name: what the caller calls it, for the message.
    :param frames: also require ``C = 3·k`` (``k`` stacked RGB frames).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor (B, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name}: expected a batch of shape (B, C, H, W), got shape {tuple(x.shape)}; "
            "add the batch dimension with x.unsqueeze(0)"
        )
    b, c, h, w = x.shape
    if b == 0:
        raise ValueError(
            f"{name}: got an empty batch, shape {tuple(x.shape)}; pass at least one image"
        )
    if w < c and w < h:
        raise ValueError(
            f"{name}: shape {tuple(x.shape)} looks channels-last (B, H, W, C); rlrep expects "
            "channel-first (B, C, H, W): use x.permute(0, 3, 1, 2)"
        )
    if not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise ValueError(
            f"{name}: expected uint8 pixels in [0, 255] or floats in [0, 1], got dtype {x.dtype}; "
            "convert with x.to(torch.uint8) (values 0–255) or x.float() / 255"
        )
    if frames and c % 3 != 0:
        raise ValueError(
            f"{name}: expected 3·k channels (k stacked RGB frames, newest last), got C={c}; "
            "colour augmentations need RGB frames"
        )
    check_pixel_range(x, name)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float32 [0, 1]; float input is returned as is."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def from_float(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Back to ``like``'s dtype: float [0, 1] → uint8 [0, 255] (rounded) when ``like`` is uint8."""
    if like.dtype == torch.uint8:
        return y.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return y.to(like.dtype)


class Sampler:
    """Draws random tensors for a batch on the batch's device.

    With a generator, draws happen on the generator's device (a CPU generator can drive a CUDA
    batch) and are moved to ``device``; without one, the global RNG of ``device`` is used.
    """

    def __init__(self, device: torch.device, generator: torch.Generator | None) -> None:
        self.device = device
        self.generator = generator
        self._draw_device = generator.device if generator is not None else device

    def uniform(self, size: tuple[int, ...] | int, low: float = 0.0, high: float = 1.0):
        u = torch.rand(size, generator=self.generator, device=self._draw_device)
        return (u * (high - low) + low).to(self.device, non_blocking=True)

    def normal(self, size: tuple[int, ...] | int) -> torch.Tensor:
        """Standard normal draws."""
        n = torch.randn(size, generator=self.generator, device=self._draw_device)
        return n.to(self.device, non_blocking=True)

    def randint(self, low: int, high: int, size: tuple[int, ...] | int) -> torch.Tensor:
        """Integers in [low, high) (high exclusive, as :func:`torch.randint`)."""
        size = (size,) if isinstance(size, int) else size
        r = torch.randint(low, high, size, generator=self.generator, device=self._draw_device)
        return r.to(self.device, non_blocking=True)

    def bernoulli(self, p: float, size: int) -> torch.Tensor:
        """Boolean mask of ``size`` draws, each True with probability ``p``."""
        return self.uniform(size) < p


class SeededGenerators:
    """One ``torch.Generator`` per device, seeded with ``seed`` when first used (a generator
    lives on one device); with ``seed=None`` there are none and torch's global RNG is used.

    :param seed: the seed of every generator, or ``None``.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._by_device: dict[torch.device, torch.Generator] = {}

    def get(self, device: torch.device) -> torch.Generator | None:
        """The generator for ``device`` (made on first use), or ``None`` without a seed."""
        if self.seed is None:
            return None
        if device not in self._by_device:
            self._by_device[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._by_device[device]


class Augmentation(nn.Module, abc.ABC):
    """Base class: checks the input, picks the random source, dispatches train / eval.

    :param seed: seed of this augmentation's own generator (one per device); ``None`` draws from
        torch's global RNG. A ``generator`` passed to ``forward`` takes precedence.
    """

    #: Whether the augmentation needs RGB frames (C = 3·k).
    needs_rgb_frames: bool = False

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = seed
        self._generators = SeededGenerators(seed)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random view in training mode, the deterministic view in ``.eval()`` mode."""
        return self.random(x, generator) if self.training else self.deterministic(x)

    def random(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random view of ``x`` whatever the module's mode (checks included)."""
        check_images(x, type(self).__name__, frames=self.needs_rgb_frames)
        self.check_size(x)
        if generator is None:
            generator = self._generators.get(x.device)
        return self.random_view(x, Sampler(x.device, generator))

    def deterministic(self, x: torch.Tensor) -> torch.Tensor:
        """The ``.eval()`` view of ``x`` whatever the module's mode (checks included)."""
        check_images(x, type(self).__name__, frames=self.needs_rgb_frames)
        self.check_size(x)
        return self.eval_view(x)

    def check_size(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` if this augmentation cannot apply to ``x``'s spatial size."""

    @abc.abstractmethod
    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        """Random view of ``x`` with per-sample parameters drawn from ``sampler``."""

    def eval_view(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic view used in ``.eval()``: the identity unless overridden."""
        return x


def per_frame(x: torch.Tensor) -> torch.Tensor:
    """View ``(B, 3·k, H, W)`` as ``(B·k, 3, H, W)`` so each RGB frame is one image."""
    b, c, h, w = x.shape
    return x.reshape(b * (c // 3), 3, h, w)


def frames_back(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`per_frame`."""
    return y.reshape(like.shape)


def repeat_frames(params: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Repeat per-sample parameters ``(B, ...)`` for each of the ``k`` frames → ``(B·k, ...)``."""
    return params.repeat_interleave(like.shape[1] // 3, dim=0)
