"""Augmentation: Numba kernels, NumPy references, parameter drawing, and ``wb augment``."""
