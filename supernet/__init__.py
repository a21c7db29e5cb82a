"""supernet: JAX supernets for neural architecture search.

The public API is curated here; implementation modules are private details.
Nothing heavy runs at import: submodules load JAX-side machinery on use.
"""

from supernet.errors import UserError
from supernet.spaces import (
    DARTS_V2,
    Arch,
    DartsSpace,
    Genotype,
    Nb201Arch,
    Nb201Space,
    SearchSpace,
    arch_from_json,
    load_arch,
    make_space,
    save_arch,
)

__version__ = "0.1.0"

__all__ = [
    "Arch", "DARTS_V2", "DartsSpace", "Genotype", "Nb201Arch", "Nb201Space",
    "SearchSpace", "UserError", "arch_from_json", "load_arch", "make_space",
    "save_arch",
]
