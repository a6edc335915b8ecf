"""NSGA-Net's macro search space (space, decode, model) and its ask/tell adapter.

Submodules are imported on demand: `space`/`decode`/`presets` need only numpy,
`model` needs torch, `algorithm` needs pymoo.
"""
