"""Each past song -> the console setting that reproduces its mix (analysis by synthesis):
``staging`` (gain staging), ``transfer`` (STFT transfer and pan), ``eq`` (the EQ
Levenberg-Marquardt fit), ``compressor`` (the compressor search), ``song`` (one song: identify,
fit, refine), ``pool`` (many songs: local processes or a Dask cluster). Imports ``twin``, ``io``
and ``dsp``."""
