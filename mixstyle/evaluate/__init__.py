"""How close the learned mixes come to the producer's: ``metrics`` (metrics and the
baselines), ``score`` (per song, summaries, a profile's score), ``loo`` (leave one song out:
calls ``fit``/``train`` directly, not ``learn``). Imports ``profile`` and below."""
