from __future__ import annotations

from pathlib import Path

import pytest

from helpline.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_and_environment_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "helpline.toml"
    toml.write_text('db = "a.db"\n[commands]\nquick_exit = ["exit"]\n[telegram]\n'
                    'protect_content = false\n')
    settings = load_settings(toml, {"HELPLINE_DB": "b.db", "HELPLINE_TELEGRAM_TOKEN": "t",
                                    "HELPLINE_LANGUAGES": "en, es"})
    assert settings.db == Path("b.db")
    assert settings.telegram.token == "t"
    assert settings.telegram.protect_content is False
    assert settings.commands.quick_exit == ["exit"]
    assert settings.languages == ["en", "es"]
    assert load_settings(None, {}).db == Path("var/helpline.db")


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = ROOT / "helpline.example.toml"
    settings = load_settings(example, {})
    text = example.read_text()
    for key, value in settings.model_dump().items():
        if isinstance(value, dict):
            assert f"[{key}]" in text, key
            for sub in value:
                assert f"\n{sub} =" in text, f"{key}.{sub}"
        else:
            assert f"\n{key} =" in text, key


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[telegram]\ntokn = "x"\n', "unknown key 'telegram.tokn'; did you mean 'token'?"),
        ("db = [1\n", "not valid TOML"),
        ('[conversation]\nresume_after_hours = "soon"\n', "'conversation.resume_after_hours'"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    toml = tmp_path / "helpline.toml"
    toml.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(toml, {})
    assert message in str(err.value)
    assert "\n" not in str(err.value)
