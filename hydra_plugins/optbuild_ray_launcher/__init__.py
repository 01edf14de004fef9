"""optbuild's Hydra launcher for Ray (`hydra/launcher=ray`), on Ray's public task API.

Hydra only instantiates launchers that live under the `hydra_plugins` namespace package, hence
this folder. The published hydra-ray-launcher plugin (1.2.x) requires cloudpickle<3, which
conflicts with the pinned joblib (cloudpickle>=3), so optbuild ships this small one instead.
"""
