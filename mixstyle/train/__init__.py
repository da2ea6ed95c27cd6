"""From fitted songs to a trained network: ``features`` (what the network sees), ``balance``
(track balance as loudness), ``records`` (the song record store), ``songs`` (songs fitted into
records, excerpts for the audio phase), ``model`` (MixNet), ``loop`` (the training loop),
``config`` (``LearnConfig``, a whole run's settings). Imports ``fit``, ``twin``, ``sessions``,
``io`` and ``dsp``."""
