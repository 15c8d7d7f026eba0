"""Accuracy of forced spectrophotometry against a simulation's truth, on a small deep field.

The README's workflow (``tests/test_spectrophotometry.py``, marked slow) checks the same figures on the
larger deep field the README quotes; this one runs by default: 3 sources (a flat continuum, a 3.05
micron ice absorption, a 3.3 micron PAH line) seen in 12 exposures of 96-pixel arrays, the demo's field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spherex.script import measure_spectra
from spherex.simulator.deep_field import deep_field_sources

from .conftest import deep_field_repo
from .test_spectrophotometry import chi2_interval, fit_ice_depth

RA, DEC, SIZE, SOURCES, SEED = 150.0, 2.0, 96, 3, 2025


def test_accuracy_on_a_small_deep_field(tmp_path: Path) -> None:
    """Pulls, reduced chi-square of each spectrum and ice depth meet the goals of issue 17 point 5."""
    truth = tmp_path / "truth.ecsv"
    repo, targets = deep_field_repo(
        tmp_path, RA, DEC, SOURCES, SIZE, SEED, steps=4, truth=truth, psf_zones=3, psf_size=41, wave_grid=5
    )
    sources = deep_field_sources(RA, DEC, SOURCES, SIZE, SEED)
    result = measure_spectra(repo, targets=targets, output=None, truth=truth)

    assert sorted(result.spectra) == sorted(s.name for s in sources)
    pulls, reduced = [], []
    for source in sources:
        spectrum = result.spectra[source.name]
        used = spectrum[spectrum["used"]]
        assert np.ptp(used["wavelength"]) > 3.5, f"{source.name}: seen from 0.75 to 5 micron"
        pull = (np.asarray(used["flux"]) - np.asarray(used["flux_true"])) / np.asarray(used["flux_err"])
        pulls.append(pull)
        reduced.append(float(np.mean(pull**2)))
        low, high = chi2_interval(len(pull), z=3.29)
        assert low <= reduced[-1] <= high, f"{source.name}: reduced chi-square {reduced[-1]:.2f}"
        if source.spectrum.ice_depth > 0:
            depth, error = fit_ice_depth(
                np.asarray(used["wavelength"]), np.asarray(used["flux"]), np.asarray(used["flux_err"])
            )
            injected = source.spectrum.ice_depth
            assert abs(depth / injected - 1) <= 0.10, f"ice {depth:.3f} +- {error:.3f} vs {injected:.3f}"
    assert any(s.spectrum.ice_depth > 0 for s in sources)
    assert 0.7 <= float(np.median(reduced)) <= 1.5, reduced
    pulls = np.concatenate(pulls)
    assert len(pulls) >= 40
    assert np.median(np.abs(pulls)) <= 0.75
    assert 0.8 <= np.std(pulls) <= 1.25
