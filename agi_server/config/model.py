"""The whole config file as one pydantic model, its module sections taken
from the module table, and :class:`Config`, what the rest of the code gets.

``ConfigFile`` is built once with ``pydantic.create_model``: the sections
every site has (:class:`SiteSections`) and, in the table's order, one list
per module (``call_distributions: list[CallDistributionSettings]``, ...), so
a module's schema lives in its own folder and the file format stays what it
was.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, create_model

from ..calls.config import CallLogSection, RecordingsSection
from ..destinations import DialplanNames
from ..modules import MODULES
from ..modules.spec import ModuleSpec
from ..numbers import NumberContext
from ..schema import Department, Section
from ..web.config import HttpSection
from ..webhooks.config import WebhooksSection
from .sections import AgiSection, AmiSection, LoggingSection, PbxSection, RedisSection, SoundsSection

Item = TypeVar("Item", bound=Section)


class SiteSections(Section):
    """The sections that are not a module's, in the order of the file."""

    pbx: PbxSection = PbxSection()
    agi: AgiSection = AgiSection()
    redis: RedisSection = RedisSection()
    data_dir: str = "./var"
    ami: AmiSection = AmiSection()
    http: HttpSection = HttpSection()
    departments: dict[str, Department] = Field(default_factory=dict)
    sounds: SoundsSection = SoundsSection()
    logging: LoggingSection = LoggingSection()
    # The CRM side (HTTP API, call log, webhooks); after the module lists in
    # the file's order, as the sections that build on them.
    call_log: CallLogSection = CallLogSection()
    recordings: RecordingsSection = RecordingsSection()
    webhooks: WebhooksSection = WebhooksSection()


@functools.cache
def config_file_model(modules: tuple[ModuleSpec[Any], ...]) -> type[SiteSections]:
    """The model of the whole file: the site's sections, then one list per
    module (built once per module table)."""
    fields: dict[str, Any] = {
        spec.section: (list[spec.settings], Field(default_factory=list))  # type: ignore[name-defined]
        for spec in modules
    }
    model: type[SiteSections] = create_model("ConfigFile", __base__=SiteSections, **fields)
    return model


ConfigFile = config_file_model(MODULES)  # the file of the module table


@dataclass(frozen=True)
class Config:
    """The validated file plus what is derived from it once."""

    file: SiteSections  # a ConfigFile: module sections are read with entries()
    path: Path | None
    data_dir: Path
    sounds_dir: Path

    @property
    def pbx(self) -> PbxSection:
        return self.file.pbx

    @property
    def agi(self) -> AgiSection:
        return self.file.agi

    @property
    def redis(self) -> RedisSection:
        return self.file.redis

    @property
    def ami(self) -> AmiSection:
        return self.file.ami

    @property
    def departments(self) -> Mapping[str, Department]:
        return self.file.departments

    @property
    def sounds(self) -> SoundsSection:
        return self.file.sounds

    @property
    def logging(self) -> LoggingSection:
        return self.file.logging

    @property
    def http(self) -> HttpSection:
        return self.file.http

    @property
    def call_log(self) -> CallLogSection:
        return self.file.call_log

    @property
    def recordings(self) -> RecordingsSection:
        return self.file.recordings

    @property
    def webhooks(self) -> WebhooksSection:
        return self.file.webhooks

    def entries(self, spec: ModuleSpec[Item]) -> list[Item]:
        """The configured instances of one module (its config list)."""
        entries: list[Item] = getattr(self.file, spec.section)
        return entries

    @property
    def names(self) -> DialplanNames:
        d = self.file.pbx.dialplan
        c = d.contexts
        return DialplanNames(d.prefix, c.extension, c.queue, c.ivr, c.hints, c.outbound, d.agent_channel)

    @property
    def numbers(self) -> NumberContext:
        pbx = self.file.pbx
        return NumberContext(pbx.country_code, pbx.area_code, pbx.exit_code)
