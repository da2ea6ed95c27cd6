"""mixstyle's DSP: numba kernels, the processors built on them, and the one parameter table.

``dsp`` imports neither ``mixstyle`` nor ``host``.
"""
