"""Search spaces written in a DeepHyper-style space language (docs/space_language.md).

- `ops`: the operations (Dense, Conv1D/2D, pooling, Dropout, Connect, Add, Concatenate...)
  and the parameter-free merge rule for mismatched shapes;
- `structure`: Structure / Cell / Block and Variable-, Constant- and MirrorNodes, and
  `LanguageSpace`, the `SearchSpace` whose architecture is the choice vector;
- `nt3`: DeepHyper's small NT3 space ("nt3", 6.3504e8 architectures);
- `xfel_image`: a small CNN space for XFEL diffraction images ("xfel-image");
- `plugin`: registers both for `plugins:` where the entry points are not installed.
"""
