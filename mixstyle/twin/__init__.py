"""The differentiable torch twin of the ``dsp`` console: ``console`` (strip, master, console),
``ops`` (its biquad and compressor autograd ops), ``kernels`` (their numba forward/adjoint
kernels) and ``losses`` (the distances its renders are judged by, also used by fit and
evaluate). Imports only ``dsp``."""
