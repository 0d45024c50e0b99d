"""Metric math on feature matrices — features → statistics → metric, no I/O: the last stage of ``gansynth evaluate``.

FID, KID, IS and precision/recall are torch-fidelity's own functions; density/coverage (Naeem et al. 2020) and the
memorization indicator, which torch-fidelity lacks, are implemented here on the same nearest-neighbour distances.

Conventions: ``generated`` is ``[M, F]`` (torch-fidelity's input1), ``real`` is ``[N, F]`` (input2), float tensors.

All of this math runs on the CPU (float64 except where torch-fidelity's own pipeline uses float32); only feature
extraction runs on the device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

PR_NEIGHBOURS = 3  # precision/recall k (Kynkäänniemi et al. 2019; torch-fidelity's default)
DC_NEIGHBOURS = 5  # density/coverage k (Naeem et al. 2020)
KID_SUBSETS = 100  # torch-fidelity's default
KID_MAX_SUBSET = 1000  # torch-fidelity's default subset size; smaller sets use all their samples per subset
KID_MIN_SAMPLES = 100  # below this many images on either side KID is reported as null (too noisy to mean anything)
ISC_SPLITS = 10
MEMORIZATION_PERCENTILE = 5.0  # see memorization()
RNG_SEED = 2020  # torch-fidelity's default seed for KID subsets and IS shuffling
_PRC_CHUNK = 5000  # torch-fidelity's chunk: 5000 × 10k float32 = 200 MB per distance block
_CHUNK = 2048  # rows of a distance matrix computed at once: 2048 × 10k float64 = 160 MB


def min_samples(metric: str) -> int:
    """Smallest number of images per set (generated and real) that ``metric`` can be computed on."""
    return {
        "fid": 2,  # a covariance needs two samples
        "precision/recall": PR_NEIGHBOURS + 1,  # the k-th neighbour of a sample other than itself
        "density/coverage": DC_NEIGHBOURS + 1,
        "kid": KID_MIN_SAMPLES,
        "is": ISC_SPLITS,
    }[metric]


# --- FID --------------------------------------------------------------------------------------------------------


def fid_statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """Mean ``[F]`` and covariance ``[F, F]`` of ``[N, F]`` features, in float64 (torch-fidelity)."""
    return fid_features_to_statistics(features.detach().cpu().double())


def fid_from_statistics(stats_generated: dict[str, np.ndarray], stats_real: dict[str, np.ndarray]) -> float:
    """Fréchet distance between two Gaussians (torch-fidelity); tiny negative rounding results read as 0.

    A non-finite result (NaN or inf features) is returned as NaN, never clamped: ``max(nan, 0.0)`` would pass NaN
    through silently; the caller (:func:`gansynth.metrics.score.score`) turns it into null with a note.
    """
    fid = float(fid_statistics_to_metric(stats_generated, stats_real, verbose=False)[KEY_METRIC_FID])
    if not math.isfinite(fid):
        return math.nan
    return max(fid, 0.0)  # FID ≥ 0 mathematically; identical sets give -1e-12 from eigenvalue rounding


def fid(generated: torch.Tensor, real: torch.Tensor) -> float:
    """FID between ``[M, F]`` and ``[N, F]`` features (torch-fidelity's statistics and formula)."""
    return fid_from_statistics(fid_statistics(generated), fid_statistics(real))


def fid_from_samples(generated: torch.Tensor, real: torch.Tensor) -> float:
    """The same FID computed from the centred samples, for sets smaller than the feature width.

    With ``A = (X - μ) / √(n - 1)`` (so ``Σ = AᵀA``), the non-zero eigenvalues of ``Σ_g Σ_r`` are the squared
    singular values of ``A_g A_rᵀ``, hence ``tr √(Σ_g Σ_r) = ‖A_g A_rᵀ‖_*``: an ``M × N`` SVD instead of
    torch-fidelity's general eigen-decomposition of an ``F × F`` product (≈ 5 s for Inception's F = 2048 on 2 CPU
    cores — per class, that is minutes). Exact; a test checks it against torch-fidelity.
    """
    g, r = generated.detach().cpu().double(), real.detach().cpu().double()
    a_g = (g - g.mean(dim=0)) / max(len(g) - 1, 1) ** 0.5
    a_r = (r - r.mean(dim=0)) / max(len(r) - 1, 1) ** 0.5
    diff = g.mean(dim=0) - r.mean(dim=0)
    tr_covmean = torch.linalg.svdvals(a_g @ a_r.T).sum()
    value = float(diff @ diff + (a_g * a_g).sum() + (a_r * a_r).sum() - 2 * tr_covmean)
    return max(value, 0.0) if math.isfinite(value) else math.nan


def class_fid(generated: torch.Tensor, real: torch.Tensor) -> float:
    """FID of one class's sets: :func:`fid_from_samples` when both sets are smaller than the feature width (the
    usual per-class case), torch-fidelity's :func:`fid` otherwise."""
    if max(len(generated), len(real)) <= generated.shape[1]:
        return fid_from_samples(generated, real)
    return fid(generated, real)


# --- KID, IS, precision/recall (torch-fidelity) -----------------------------------------------------------------


def kid_subsets(num_generated: int, num_real: int) -> int:
    """Subsets KID averages over: torch-fidelity's 100, or 1 when every subset would be both whole sets (the
    unbiased MMD² does not depend on the order of samples, so 100 identical subsets would give the same number)."""
    return 1 if num_generated == num_real <= KID_MAX_SUBSET else KID_SUBSETS


def kid(generated: torch.Tensor, real: torch.Tensor) -> float | None:
    """Kernel inception distance (unbiased MMD², cubic polynomial kernel, mean over subsets); None when either
    set has fewer than ``KID_MIN_SAMPLES`` rows."""
    subset = min(KID_MAX_SUBSET, len(generated), len(real))
    if subset < KID_MIN_SAMPLES:
        return None
    out = kid_features_to_metric(
        generated.detach().cpu().float(),  # float32, as torch-fidelity's own pipeline passes them
        real.detach().cpu().float(),
        kid_subsets=kid_subsets(len(generated), len(real)),
        kid_subset_size=subset,
        rng_seed=RNG_SEED,
        verbose=False,
    )
    return float(out[KEY_METRIC_KID_MEAN])


def inception_score(logits: torch.Tensor) -> float | None:
    """Inception score of ``[M, 1008]`` unbiased Inception logits (torch-fidelity; 10 splits); None below 10 rows."""
    if len(logits) < ISC_SPLITS:
        return None
    out = isc_features_to_metric(logits.detach().cpu(), splits=ISC_SPLITS, shuffle=True, rng_seed=RNG_SEED)
    return float(out[KEY_METRIC_ISC_MEAN])


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = PR_NEIGHBOURS) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with torch-fidelity's k-NN balls (``<=``).

    Precision: share of generated samples inside some real sample's k-NN ball. Recall: share of real samples
    inside some generated sample's k-NN ball.
    """
    out = prc_features_to_metric(
        generated.detach().cpu().float(),
        real.detach().cpu().float(),
        prc_neighborhood=k,
        prc_batch_size=_PRC_CHUNK,
        save_cpu_ram=True,  # chunked distances instead of three full M × N matrices
        verbose=False,
    )
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


# --- nearest-neighbour distances ---------------------------------------------------------------------------------


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[len(a), len(b)]`` in float64."""
    return torch.cdist(a.double(), b.double())


def neighbour_distances(features: torch.Tensor, k: int) -> torch.Tensor:
    """``[N, k]``: distances from each row to its 1st … k-th nearest *other* row, ascending (float64)."""
    if len(features) <= k:
        raise ValueError(f"{k} neighbours need at least {k + 1} samples, got {len(features)}")
    out = []
    for start in range(0, len(features), _CHUNK):
        block = _distances(features[start : start + _CHUNK], features)
        rows = torch.arange(block.shape[0])
        block[rows, rows + start] = float("inf")  # a sample is not its own neighbour
        out.append(block.topk(k, dim=1, largest=False).values)
    return torch.cat(out)


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``[M]``: distance from each query row to its nearest reference row (float64)."""
    return torch.cat(
        [_distances(queries[s : s + _CHUNK], reference).min(dim=1).values for s in range(0, len(queries), _CHUNK)]
    )


# --- density / coverage (Naeem et al. 2020) and memorization ----------------------------------------------------


def real_neighbourhoods(real: torch.Tensor, k: int = DC_NEIGHBOURS) -> torch.Tensor:
    """``[N, k]`` real-to-real neighbour distances: the statistics of the real set that density, coverage and
    memorization compare generated samples against (column -1: k-NN radius, column 0: nearest-neighbour distance)."""
    return neighbour_distances(real, k)


def _ball_pass(
    generated: torch.Tensor, real: torch.Tensor, radii: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over the real × generated distances.

    Returns:
        per generated sample, the number of real balls ``B(X_i, r_i)`` it lies in ``[M]``; per real sample, whether
        its ball holds a generated sample ``[N]`` (bool); per generated sample, the distance to its nearest real
        sample ``[M]``.
    """
    inside_count = torch.zeros(len(generated), dtype=torch.float64)
    nearest = torch.full((len(generated),), float("inf"), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for start in range(0, len(real), _CHUNK):
        block = _distances(real[start : start + _CHUNK], generated)  # [n, M]
        inside = block < radii[start : start + _CHUNK, None].double()  # open balls, as in the authors' code
        inside_count += inside.sum(dim=0)
        covered[start : start + _CHUNK] = inside.any(dim=1)
        nearest = torch.minimum(nearest, block.min(dim=0).values)
    return inside_count, covered, nearest


def density_coverage(
    generated: torch.Tensor, real: torch.Tensor, k: int = DC_NEIGHBOURS, real_radii: torch.Tensor | None = None
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models").

    With ``r_i`` the distance from real sample ``X_i`` to its k-th nearest other real sample and ``B(X_i, r_i)`` the
    open ball around it (strict ``<``, as in the authors' reference code, so that identical sets give density 1):

    - density  = 1/(k·M) · Σ_j Σ_i 1[Y_j ∈ B(X_i, r_i)]   — how many real neighbourhoods a generated sample falls in,
      normalised so that samples from the real distribution score ≈ 1 (it can exceed 1);
    - coverage = 1/N · Σ_i 1[∃ j: Y_j ∈ B(X_i, r_i)]       — share of real neighbourhoods holding a generated sample.

    Args:
        generated: ``[M, F]`` features ``Y``.
        real: ``[N, F]`` features ``X``, N > k.
        k: neighbourhood size.
        real_radii: precomputed ``r`` ``[N]`` (``real_neighbourhoods(real, k)[:, -1]``), to share work.
    """
    radii = neighbour_distances(real, k)[:, -1] if real_radii is None else real_radii
    inside_count, covered, _ = _ball_pass(generated, real, radii)
    return float(inside_count.sum() / (k * len(generated))), float(covered.double().mean())


def memorization_threshold(real_nearest: torch.Tensor, percentile: float = MEMORIZATION_PERCENTILE) -> float:
    """The ``percentile``-th percentile of real-to-real nearest-neighbour distances ``[N]``."""
    return float(np.percentile(real_nearest.double().cpu().numpy(), percentile))


def memorization_share(
    generated_nearest: torch.Tensor, real_nearest: torch.Tensor, percentile: float = MEMORIZATION_PERCENTILE
) -> float:
    """Share of generated samples whose nearest-real distance ``[M]`` is below ``memorization_threshold``."""
    threshold = memorization_threshold(real_nearest, percentile)
    return float((generated_nearest < threshold).double().mean())


def memorization(generated: torch.Tensor, real: torch.Tensor, percentile: float = MEMORIZATION_PERCENTILE) -> float:
    """Share of generated samples closer to a real (training) sample than nearly all real samples are to each other.

    Definition: ``τ`` is the ``percentile``-th percentile (default 5th) of the distances from each real sample to
    its nearest *other* real sample; the indicator is the share of generated samples whose nearest real sample
    lies closer than ``τ``. A fresh sample from the real distribution scores about ``percentile``/100 (≈ 0.05);
    a generator that reproduces its training images scores near 1.

    Args:
        generated: ``[M, F]`` features.
        real: ``[N, F]`` features of the training images, N ≥ 2.
    """
    return memorization_share(nearest_distances(generated, real), neighbour_distances(real, 1)[:, 0], percentile)


def neighbourhood_metrics(
    generated: torch.Tensor, real: torch.Tensor, real_neighbours: torch.Tensor | None = None, k: int = DC_NEIGHBOURS
) -> dict[str, float]:
    """Density, coverage and memorization from one pass over the distances (same definitions as above).

    Args:
        generated: ``[M, F]``.
        real: ``[N, F]``, N > k.
        real_neighbours: ``real_neighbourhoods(real, k)`` when already computed (it is cached with real features).
    """
    neighbours = real_neighbourhoods(real, k) if real_neighbours is None else real_neighbours
    inside_count, covered, nearest = _ball_pass(generated, real, neighbours[:, k - 1])
    return {
        "density": float(inside_count.sum() / (k * len(generated))),
        "coverage": float(covered.double().mean()),
        "memorization": memorization_share(nearest, neighbours[:, 0]),
    }
