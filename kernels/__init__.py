"""Triton kernels (inference only), one per file: each file holds the @triton.jit kernel and its checked launcher.

This folder lives at the top level of the checkout and is installed as ``minibert.kernels`` (pyproject's
``package-dir``); inside the package only ``minibert/encoder/gpu.py`` imports it (ARCHITECTURE.md, "Layers").
"""
