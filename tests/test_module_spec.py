"""A module is declared in one place: everything else follows from its spec.

A module made up here, ``echo`` (config list ``echoes``), added to the
table and nowhere else, gets its config section, its destination type, the
cross-checks, its routes; and the four real modules' specs agree with the
files they name (templates, prompt sets).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agi_server.app import assemble, module_deps
from agi_server.config import parse_config
from agi_server.destinations import Destination
from agi_server.dialplan import templates_dir
from agi_server.errors import ConfigError
from agi_server.modules import MODULES
from agi_server.modules.spec import Deps, ModuleParts, ModuleSpec
from agi_server.prompt_catalog import catalog_keys
from agi_server.routing import Call, Outcome, Route
from agi_server.schema import Code, DestinationField, Section
from helpers import example_text, replace_once


class EchoSettings(Section):
    code: Code
    failure: DestinationField


class Echo:
    def __init__(self, item: EchoSettings) -> None:
        self.item = item

    async def __call__(self, call: Call) -> Outcome:
        return Outcome(self.item.failure, "echo")


def build(entries: Sequence[EchoSettings], deps: Deps) -> ModuleParts:
    return ModuleParts([Route(f"echo/{item.code}", Echo(item), item.failure) for item in entries])


ECHO = ModuleSpec(
    name="echo",
    section="echoes",
    settings=EchoSettings,
    build=build,
    destinations=lambda item: [("failure", item.failure)],
)
WITH_ECHO = (*MODULES, ECHO)


def echo_text(*echoes: str, destination: str = "queue:sales") -> str:
    text = replace_once(example_text(), 'destination: "queue:sales"', f'destination: "{destination}"')
    return text + "echoes:\n" + "".join(f"  - {{code: \"{code}\", failure: \"calldist:700\"}}\n" for code in echoes)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={}, modules=WITH_ECHO)
    return [str(p) for p in info.value.problems]


def test_a_new_module_gets_its_section_destination_type_and_routes():
    config = parse_config(echo_text("1", destination="echo:1"), env={}, modules=WITH_ECHO)
    assert [item.code for item in config.entries(ECHO)] == ["1"]
    assert config.file.call_distributions[0].items[1].destination == Destination("echo", "1")
    routes = assemble(config, module_deps(config), WITH_ECHO).routes
    assert routes.get("echo/1") is not None
    assert routes.get("calldist/700") is not None


def test_a_new_module_gets_the_cross_checks():
    found = problems(echo_text("1", "1", destination="echo:2"))
    assert "echoes[1].code: duplicate code (also echoes[0]) (got '1')" in found
    assert ("call_distributions[0](code 700).items[1].destination: no echoes entry has code '2' (got 'echo:2')"
            in found)


def test_without_the_line_in_the_table_there_is_no_such_module():
    with pytest.raises(ConfigError) as info:
        parse_config(echo_text("1"), env={})
    assert [str(p) for p in info.value.problems] == ["echoes: unknown key (check the spelling) (got [{'code': '1', "
                                                     "'failure': 'calldist:700'}])"]
    with pytest.raises(ConfigError) as info:
        parse_config(echo_text(destination="echo:1").rsplit("echoes:", 1)[0], env={})
    assert "unknown destination type 'echo'" in str(info.value)


@pytest.mark.parametrize("spec", MODULES, ids=lambda spec: spec.name)
def test_each_spec_names_files_that_exist(spec):
    if spec.template is not None:
        assert (templates_dir() / spec.template).is_file()
    if spec.prompts:
        assert catalog_keys(spec.name), f"no {spec.name} prompt set in sounds/catalog.yaml"
        assert "prompts" in spec.settings.model_fields  # entries may override them


def test_the_table_is_in_the_order_of_the_file_and_names_are_unique():
    assert [spec.section for spec in MODULES] == [
        "call_distributions", "callback_requests", "operator_reconnects", "help_requests",
    ]  # fmt: skip
    assert len({spec.name for spec in MODULES}) == len(MODULES)
