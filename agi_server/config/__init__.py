"""The one config file, validated once into typed, frozen objects.

- ``sections``: the sections every site has (``pbx``, ``agi``, ``redis``, ...);
- ``model``: the whole file as one model (module sections from the module
  table) and :class:`Config`;
- ``checks``: the rules across sections (unique codes, destinations that
  exist, queue members, then each module's own ``problems``);
- ``loading``: YAML, ``${ENV}``, and every problem reported at once.
"""

from ..errors import ConfigError
from ..problems import Problem
from .loading import load_config, parse_config
from .model import Config, ConfigFile, SiteSections
from .sections import AmiSection, split_host_port

__all__ = [
    "AmiSection",
    "Config",
    "ConfigError",
    "ConfigFile",
    "Problem",
    "SiteSections",
    "load_config",
    "parse_config",
    "split_host_port",
]
