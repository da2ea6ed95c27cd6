"""mixstyle: learn one producer's mixing style and mix new stems like they would.

The subpackages, read top to bottom, are the data path: ``sessions`` (past songs in) -> ``fit``
(each song's console setting, through the torch ``twin``) -> ``train`` (records, network) ->
``profile`` (stored, predicting) -> ``evaluate``, ``mastering``, ``export``, ``demo``; ``learn``
and ``cli`` are the pipelines on top, ``io`` and ``errors`` the ground. Imports run one way,
downward (docs/DESIGN.md "The tree"; ``make test`` checks it).
"""
