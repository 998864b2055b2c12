"""The Julia engine's runtime: one import point for Julia, shared by every Julia feature.

Importing this package does not import juliacall or start Julia.
"""

from hybrideq.engines.julia._runtime import (
    JULIA_ENV_DEFAULTS,
    JULIA_INSTALL_HINT,
    JuliaNotInstalledError,
    apply_env_defaults,
    find_julia,
    import_juliacall,
    require_julia,
)

__all__ = [
    "JULIA_ENV_DEFAULTS",
    "JULIA_INSTALL_HINT",
    "JuliaNotInstalledError",
    "apply_env_defaults",
    "find_julia",
    "import_juliacall",
    "require_julia",
]
