"""A learned profile: ``store`` (folder, save/load, weights), ``predict`` (``Profile``: stems ->
console setting), ``ceiling`` (learn's limiter-ceiling calibration), ``card`` (the model card),
``report`` (the HTML report), ``mixdown`` (what mix, export and host --render share), ``roles``
(a stems folder's roles, for the host). ``predict`` and ``store`` (inference) import only
``train``'s model, features and balance, never its loop. ``host`` may import this package and
nothing else of ``mixstyle``."""
