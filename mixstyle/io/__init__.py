"""Files in and out: audio read/write and resampling (``audio``), WAV frame counting
(``frames``), the Dask cluster helpers the batch jobs run on (``cluster``). Atomic writes are
``dsp.files`` (the one writer, shared with ``host``). Imports only ``dsp``."""
