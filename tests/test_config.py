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
                assert f"\n{sub} =" in text or f"\n# {sub} =" in text, f"{key}.{sub}"
        else:
            assert f"\n{key} =" in text or f"\n# {key} =" in text, key


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


def test_a_helpline_toml_in_the_current_folder_is_read(tmp_path: Path) -> None:
    assert load_settings(None, {}, cwd=tmp_path).db == Path("var/helpline.db")
    (tmp_path / "helpline.toml").write_text('db = "here.db"\n')
    assert load_settings(None, {}, cwd=tmp_path).db == Path("here.db")
    other = tmp_path / "other.toml"
    other.write_text('db = "other.db"\n')
    assert load_settings(None, {"HELPLINE_CONFIG": str(other)}, cwd=tmp_path).db == Path(
        "other.db")
    assert load_settings(other, {}, cwd=tmp_path).db == Path("other.db")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HELPLINE_TELEGRAM_TOKN": "x"},
         "environment: unknown variable HELPLINE_TELEGRAM_TOKN; did you mean "
         "HELPLINE_TELEGRAM_TOKEN?"),
        ({"HELPLINE_SECRET": "x"}, "did you mean HELPLINE_SECRET_KEY?"),
        ({"HELPLINE_STAFFCHAT": "1"}, "did you mean HELPLINE_STAFF_CHAT?"),
        ({"HELPLINE_WHATEVER": "1", "HELPLINE_LOGLEVEL": "x"},
         "environment: unknown variable HELPLINE_LOGLEVEL; did you mean HELPLINE_LOG_LEVEL?; "
         "unknown variable HELPLINE_WHATEVER; unset it (helpline.example.toml lists every "
         "setting)"),
    ],
)
def test_unknown_environment_variables_are_errors(environ: dict[str, str],
                                                  message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ, cwd=Path("/nonexistent"))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_every_documented_variable_is_known() -> None:
    environ = {"HELPLINE_STAFF_CHAT": "-1001", "HELPLINE_ADVOCATES": "1,2",
               "HELPLINE_HANDOFF_UNCLAIMED_MINUTES": "5", "HELPLINE_SIGNAL_NUMBER": "+1",
               "HELPLINE_ALLOW_INCOMPLETE": "de", "HELPLINE_CONFIG": "",
               # what Kubernetes sets for a service named helpline: not ours, not refused
               "HELPLINE_SERVICE_HOST": "10.0.0.1", "HELPLINE_PORT": "tcp://10.0.0.1:80",
               "HELPLINE_PORT_80_TCP_ADDR": "10.0.0.1"}
    settings = load_settings(None, environ, cwd=Path("/nonexistent"))
    assert settings.handoff.advocates == [1, 2] and settings.allow_incomplete == ["de"]


def test_a_misspelt_section_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    toml = tmp_path / "helpline.toml"
    toml.write_text('[telegarm]\ntoken = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(toml, {})
    assert "unknown key 'telegarm'; did you mean 'telegram'?" in str(err.value)


def test_the_default_language_must_be_enabled(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, {"HELPLINE_DEFAULT_LANGUAGE": "es"}, cwd=tmp_path)
    assert str(err.value) == ("environment: default_language 'es' is not one of languages "
                              "(en); add it there or choose one of them")
    toml = tmp_path / "helpline.toml"
    toml.write_text('default_language = "fr"\nlanguages = ["en", "es"]\n')
    with pytest.raises(ConfigError) as err:
        load_settings(toml, {})
    assert "default_language 'fr' is not one of languages (en, es)" in str(err.value)
    assert load_settings(None, {"HELPLINE_DEFAULT_LANGUAGE": "es",
                                "HELPLINE_LANGUAGES": "es,en"}).default_language == "es"
