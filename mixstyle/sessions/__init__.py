"""Past sessions in: ``load`` (song folders -> ``Song``), ``check`` (the problem table a
loader reports), ``align`` (mix/stem offset, the loudest window), ``roles`` (stem names -> roles),
``audio_roles`` (the sound -> a role, when the name says nothing).
Imports ``mixstyle.io`` and ``dsp``; the first stage of the data path."""
