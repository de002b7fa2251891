"""Voice prompts from text or recordings: the library behind ``agi-server sounds``.

See ``sounds/README.md`` for the file layout, engines and formats.
"""

from agi_server.audio.build import (
    BuildEvent,
    BuildReport,
    build,
    import_recording,
    manifest_path,
    say,
)
from agi_server.audio.catalog import (
    Catalog,
    PromptSpec,
    catalog_prompts,
    load_catalog,
    readback_files,
)
from agi_server.audio.engines import ENGINES, EspeakEngine, GttsEngine, PiperEngine, make_engine
from agi_server.audio.errors import (
    CatalogError,
    ConversionFailed,
    EngineUnavailable,
    FormatUnavailable,
    MissingProgram,
    SettingsInvalid,
    SoundsError,
    SynthesisFailed,
)
from agi_server.audio.persian import digits_to_words, number_to_words, speakable_text
from agi_server.audio.render import FORMATS
from agi_server.audio.settings import SoundSettings

__all__ = [
    "ENGINES",
    "FORMATS",
    "BuildEvent",
    "BuildReport",
    "Catalog",
    "CatalogError",
    "ConversionFailed",
    "EngineUnavailable",
    "EspeakEngine",
    "FormatUnavailable",
    "GttsEngine",
    "MissingProgram",
    "PiperEngine",
    "PromptSpec",
    "SettingsInvalid",
    "SoundSettings",
    "SoundsError",
    "SynthesisFailed",
    "build",
    "catalog_prompts",
    "digits_to_words",
    "import_recording",
    "load_catalog",
    "make_engine",
    "manifest_path",
    "number_to_words",
    "readback_files",
    "say",
    "speakable_text",
]
