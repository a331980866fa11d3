"""Triton kernels (inference only), one per file: each file holds the @triton.jit kernel and its checked launcher."""
