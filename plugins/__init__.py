"""Comparator plugins: pure functions of numpy arrays (numpy, scipy and engine.types only).

``BUILTIN`` lists the built-in comparators; they register through the same path as
external plugins (``engine.registry.build_registry``).
"""

from __future__ import annotations

BUILTIN: tuple[str, ...] = (
    "plugins.beta_binomial:BetaBinomial",
    "plugins.multiscale:RegionScan",
    "plugins.variation:VariationScan",
    "plugins.moments:Moments",
    "plugins.history_pca:HistoryPCA",
    "plugins.pull_values:PullValues",
    "plugins.ks:KSTest",
    "plugins.profile_pull:ProfilePull",
    "plugins.pca:PCA",
    "plugins.pca:AutoDQMMLPCA",
)
