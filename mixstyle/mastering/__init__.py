"""Mastering in the producer's style: ``profile`` (the master profile, master.json I/O),
``learn`` (learn_master), ``fit`` (a master bus from a mix/master pair), ``chain``
(master_audio), ``batch`` (the resumable batch, local processes or Dask), ``pool`` and
``worker`` (what its processes run). This ``__init__`` imports nothing, so the batch
coordinator loads no numba kernels or audio reader. Imports ``sessions``, ``io`` and ``dsp``."""
