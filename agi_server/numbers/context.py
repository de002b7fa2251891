"""Where the PBX is, and what phonenumbers' metadata says about its country.

A :class:`NumberContext` (country code, area code, exit code) is what every
caller ID and every typed number is read relative to; the helpers below
answer the few metadata questions the readings need (trunk prefix, the
usual lengths of national and local numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class NumberContext:
    """Where the PBX is: what a national or local caller ID is relative to.

    ``exit_code`` is the digit(s) the PBX dials before an outside number;
    some trunks and PBXs also put it in front of incoming caller IDs.
    """

    country_code: str = "98"
    area_code: str = "21"
    exit_code: str = ""

    def __post_init__(self) -> None:
        if not self.country_code.isascii() or not self.country_code.isdigit():
            raise ValueError(f"country code {self.country_code!r} is not digits")
        region = phonenumbers.region_code_for_country_code(int(self.country_code))
        if region == "ZZ" or not region.isalpha():
            # "001" is a non-geographic code (+800, +882...): no PBX lives there.
            raise ValueError(f"country code {self.country_code!r} is not a country's")
        for name in ("area_code", "exit_code"):
            value = getattr(self, name)
            if value and not (value.isascii() and value.isdigit() and len(value) <= 4):
                raise ValueError(f"{name.replace('_', ' ')} {value!r} is not 1-4 digits")

    @property
    def region(self) -> str:
        """The phonenumbers region code for ``country_code`` (``IR``)."""
        return str(phonenumbers.region_code_for_country_code(int(self.country_code)))


def _metadata(region: str) -> phonenumbers.PhoneMetadata:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:  # NumberContext only allows regions phonenumbers knows
        raise ValueError(f"phonenumbers has no metadata for region {region!r}")
    return meta


def max_national_length(region: str) -> int:
    """The longest national significant number of ``region``."""
    desc = _metadata(region).general_desc
    return max(desc.possible_length if desc is not None else (0,))


def local_length(region: str) -> int:
    """The usual length of a subscriber number dialled without area code.

    Only the longest local-only length counts: shorter local numbers are
    far more often internal extensions or service codes than city callers.
    """
    desc = _metadata(region).fixed_line
    lengths = desc.possible_length_local_only if desc else ()
    return max(lengths, default=0)


def trunk_prefix(region: str) -> str:
    return _metadata(region).national_prefix or ""


def international_prefix(region: str) -> str:
    meta = _metadata(region)
    for prefix in (meta.preferred_international_prefix, meta.international_prefix):
        if prefix and prefix.isdigit():
            return str(prefix)
    return "00"
