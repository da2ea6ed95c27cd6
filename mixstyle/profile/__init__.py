"""A learned profile: ``store`` (folder, save/load, weights), ``predict`` (``Profile``:
stems -> console setting), ``roles`` (a stems folder's roles, for the host), ``card`` (the model
card), ``report`` (the HTML report), ``mixdown`` (what mix, export and host --render share).
Inference only: imports ``train``'s model and features, never its loop. ``host`` may import this
package and nothing else of ``mixstyle``."""
