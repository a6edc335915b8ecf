"""Register "nt3" and "xfel-image" for a run config's `plugins: [adapters.spaces.plugin]`.

The installed package provides both through entry points (pyproject.toml); this module
is for an environment whose installed metadata predates them. It registers a name only
where nothing (no entry point, no earlier registration) provides it yet, so it is
harmless once the entry points are installed.
"""

from __future__ import annotations

from a4nn.registry import available_spaces, register_space
from adapters.spaces.nt3 import NAME as NT3
from adapters.spaces.nt3 import make_nt3_space
from adapters.spaces.xfel_image import NAME as XFEL_IMAGE
from adapters.spaces.xfel_image import make_xfel_image_space

SPACES = {NT3: make_nt3_space, XFEL_IMAGE: make_xfel_image_space}

for _name, _factory in SPACES.items():
    if _name not in available_spaces():
        register_space(_name, _factory)
