"""The image shift augmentation (``augment_shift_px``) on stored uint8 frames."""

import numpy as np
import pytest
import torch

from graspq.learning.agent import random_shift


def _clamped_shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Replicate-padded shift by index arithmetic: out[y, x] = in[clamp(y+dy), clamp(x+dx)]."""
    size = image.shape[0]
    rows = np.clip(np.arange(size) + dy, 0, size - 1)
    cols = np.clip(np.arange(size) + dx, 0, size - 1)
    return image[rows[:, None], cols[None, :]]


@pytest.mark.parametrize("pad", [1, 2])
def test_each_image_is_shifted_by_its_own_offset_with_edges_replicated(pad):
    rng = np.random.default_rng(pad)
    images = rng.integers(0, 256, (300, 12, 12, 4), dtype=np.uint8)
    before = images.copy()
    shifted = random_shift(images, pad, torch.Generator().manual_seed(7))
    assert shifted.dtype == np.uint8 and shifted.shape == images.shape
    np.testing.assert_array_equal(images, before)  # the replay's arrays stay as stored
    # The offsets come from the generator: (row, col) in 0..2*pad, centred on pad.
    offsets = torch.randint(0, 2 * pad + 1, (300, 2), generator=torch.Generator().manual_seed(7))
    seen = set()
    for image, out, (oy, ox) in zip(images, shifted, offsets.tolist(), strict=True):
        np.testing.assert_array_equal(out, _clamped_shift(image, oy - pad, ox - pad))
        seen.add((oy, ox))
    assert len(seen) == (2 * pad + 1) ** 2  # every shift occurs, the unshifted one included


def test_a_non_square_or_unbatched_image_is_refused():
    with pytest.raises(ValueError, match=r"\(N, S, S, C\)"):
        random_shift(np.zeros((2, 8, 9, 3), np.uint8), 1, torch.Generator())
    with pytest.raises(ValueError, match=r"\(N, S, S, C\)"):
        random_shift(np.zeros((8, 8, 3), np.uint8), 1, torch.Generator())
