"""Phone numbers and extensions: the domain code every module shares.

- ``context``: where the PBX is (:class:`NumberContext`);
- ``caller``: a caller ID normalised to E.164 and classified
  (:func:`normalise`, :class:`Normaliser`, :class:`CallerNumber`);
- ``caller_types``: what ``type: city`` / ``mobile`` / ``mci`` ... means;
- ``patterns``: ``+9841________``, ``_09[13]XXXXXXXX``, ``regex:...`` and
  plain numbers, compiled once;
- ``dialable``: the one reading of every number the product dials
  (:func:`dialable` -> :class:`DialNumber`, exit code in front once);
- ``carriers``: which mobile carrier a range was allocated to;
- ``extensions``: what an extension is, and ``members_of`` a target.
"""

from .caller import CATEGORIES, MAX_RAW_LENGTH, CallerNumber, Normaliser, describe, normalise
from .caller_types import AREA_TYPES, TYPES, area_name, check_type, explain_type, matches_type
from .context import NumberContext
from .dialable import DialNumber, NotDialable, dialable
from .extensions import EXTENSION, check_extension, is_extension, members_of
from .patterns import E164, NATIONAL, Pattern, PatternError, compile_pattern

__all__ = [
    "AREA_TYPES",
    "CATEGORIES",
    "E164",
    "EXTENSION",
    "MAX_RAW_LENGTH",
    "NATIONAL",
    "TYPES",
    "CallerNumber",
    "DialNumber",
    "Normaliser",
    "NotDialable",
    "NumberContext",
    "Pattern",
    "PatternError",
    "area_name",
    "check_extension",
    "check_type",
    "compile_pattern",
    "describe",
    "dialable",
    "explain_type",
    "is_extension",
    "matches_type",
    "members_of",
    "normalise",
]
