"""The dynamic gamma threshold follows the configured percentile on synthetic gamma sets."""

import numpy as np
import pytest

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.threshold import gamma_threshold, parse_threshold_setting, resolve_threshold


@pytest.fixture
def lognormal_gammas():
    """Per-atom gammas of 200 structures of 30 atoms: mostly interpolation, a tail of extrapolation."""
    rng = np.random.default_rng(0)
    return [rng.lognormal(mean=0.3, sigma=0.5, size=30) for _ in range(200)]


@pytest.mark.parametrize("percentile", [95, 97.5, 99])
def test_threshold_is_the_percentile_of_all_atoms(lognormal_gammas, percentile):
    flat = np.concatenate(lognormal_gammas)
    expected = np.sort(flat)[int(np.ceil(percentile / 100 * flat.size)) - 1]
    value = gamma_threshold(lognormal_gammas, percentile, floor=0.1, ceiling=100.0)
    # np.percentile interpolates linearly: it lies between neighbouring order statistics.
    assert abs(value - expected) < 0.05 * expected
    assert np.mean(flat <= value) == pytest.approx(percentile / 100, abs=1 / flat.size + 1e-12)


def test_threshold_is_lenient_early_and_strict_when_mature():
    rng = np.random.default_rng(1)
    early = rng.lognormal(mean=0.8, sigma=0.7, size=3000)  # wide spread: young training set
    mature = rng.lognormal(mean=0.0, sigma=0.2, size=3000)  # narrow: mature training set
    assert gamma_threshold(early, 95, floor=1.0, ceiling=10.0) > 2 * gamma_threshold(mature, 95, floor=1.0)


def test_floor_and_ceiling_clip(lognormal_gammas):
    assert gamma_threshold(np.full(100, 0.2), 95, floor=1.0, ceiling=10.0) == 1.0
    assert gamma_threshold(np.full(100, 50.0), 99, floor=1.0, ceiling=10.0) == 10.0
    record = resolve_threshold("dynamic_99percentile", [np.full(10, 0.3)], generation=3, floor=1.5)
    assert (record.threshold, record.clipped, record.generation, record.n_gammas) == (1.5, "floor", 3, 10)
    assert record.raw_value == pytest.approx(0.3)


def test_parse_settings():
    assert parse_threshold_setting("dynamic_95percentile").value == 95
    assert parse_threshold_setting("Dynamic_99percentile").mode == "dynamic"
    assert parse_threshold_setting("dynamic_97.5percentile").value == 97.5
    fixed = parse_threshold_setting(5)
    assert (fixed.mode, fixed.value) == ("fixed", 5.0)
    assert parse_threshold_setting("3.5").value == 3.5
    assert resolve_threshold(4.0).threshold == 4.0


@pytest.mark.parametrize(
    "bad",
    ["dynamic_90percentile", "dynamic_100percentile", "dynamic_percentile", "high", -1.0, 0, True, None],
)
def test_bad_settings_name_the_field(bad):
    with pytest.raises(InputError, match="gamma_threshold"):
        parse_threshold_setting(bad)


def test_bad_inputs():
    with pytest.raises(InputError, match="percentile"):
        gamma_threshold(np.ones(5), 80)
    with pytest.raises(InputError, match="floor"):
        gamma_threshold(np.ones(5), 95, floor=5.0, ceiling=2.0)
    with pytest.raises(InputError, match="gammas"):
        gamma_threshold([], 95)
    with pytest.raises(InputError, match="gammas"):
        resolve_threshold("dynamic_95percentile", None)
    with pytest.raises(InputError, match="gammas"):
        gamma_threshold(np.array([1.0, np.nan]), 95)


def test_frame_max_statistic_takes_the_percentile_over_each_frames_largest_gamma(lognormal_gammas):
    frame_max = np.array([g.max() for g in lognormal_gammas])
    record = resolve_threshold(
        "dynamic_99percentile", lognormal_gammas, floor=0.1, ceiling=100.0, statistic="frame_max"
    )
    assert record.raw_value == pytest.approx(np.percentile(frame_max, 99))
    assert (record.n_gammas, record.statistic, record.clipped) == (200, "frame_max", "none")
    # A frame's largest gamma exceeds most atoms' gamma: per frame is the stricter sample of what halts MD.
    assert record.threshold > gamma_threshold(lognormal_gammas, 99, floor=0.1, ceiling=100.0)
    young = [np.full(8, 4.0), np.full(8, 20.0)] * 10
    assert gamma_threshold(young, 95, statistic="frame_max") == 10.0  # ceiling
    with pytest.raises(InputError, match="per-frame"):
        gamma_threshold(np.ones(10), 95, statistic="frame_max")
    with pytest.raises(InputError, match="gamma_statistic"):
        gamma_threshold(lognormal_gammas, 95, statistic="median")


def test_nothing_graded_means_the_ceiling():
    """No held-out atom could be graded (dataset smaller than the basis): as young as it gets."""
    record = resolve_threshold("dynamic_95percentile", [], floor=1.0, ceiling=8.0, n_ungraded=12)
    assert (record.threshold, record.clipped, record.n_gammas, record.n_ungraded) == (8.0, "ceiling", 0, 12)
