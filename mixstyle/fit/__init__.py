"""Each past song -> the console setting that reproduces its mix (analysis by synthesis):
``eq`` (the EQ Levenberg-Marquardt fit), ``compressor`` (the compressor search), ``song`` (one
song: identify, fit, refine), ``pool`` (many songs: local processes or a Dask cluster).
Imports ``mixstyle.twin``, ``mixstyle.io`` and ``dsp``."""
