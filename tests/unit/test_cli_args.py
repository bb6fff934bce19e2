"""The command line's parsing and error lines, in-process: abbreviations, --debug on either side, numbers,
misspelled config keys, and how errors wrapped by dlt become one line and an exit code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.cli import build_parser, check_writable_folder, main, unknown_config_keys
from pipelines.errors import INTERRUPTED, explain
from posthog_source import SETTING_NAMES
from posthog_source.errors import ConfigurationError, PermissionDeniedError


def one_line_exit(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_abbreviated_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_exit(capsys, ["run", "--start-dat", "2025-01-01"])
    assert "unrecognized arguments: --start-dat" in err
    one_line_exit(capsys, ["report", "--htm", "x.html"])
    one_line_exit(capsys, ["--deb", "check"])


@pytest.mark.parametrize(("argv", "debug"), [
    (["check"], False), (["--debug", "check"], True), (["check", "--debug"], True),
    (["--debug", "run", "--debug"], True), (["run", "--resources", "events", "--debug"], True),
])
def test_debug_before_or_after_the_command(argv: list[str], debug: bool) -> None:
    assert build_parser().parse_args(argv).debug is debug


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str], value: str) -> None:
    err = one_line_exit(capsys, ["run", "--workers", value])
    assert f"argument --workers: must be a positive whole number, got '{value}'" in err


def test_unknown_config_keys_from_toml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        '[sources.posthog]\nhost = "us"\nstrat_date = "2024-01-01"\nrate_limits = {}\n'
        '[sources.posthog.posthog]\ningestion_lagg = "5m"\n[destination.duckdb]\ncredentials = "x.duckdb"\n'
    )
    (tmp_path / ".dlt" / "secrets.toml").write_text('[sources.posthog]\napi_kee = "phx_1"\n')
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SOURCES__POSTHOG__")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOURCES__POSTHOG__WORKRES", "2")
    monkeypatch.setenv("SOURCES__POSTHOG__PROJECT_IDS", "1")
    monkeypatch.setenv("SOURCES__POSTHOG__ZZZ", "1")
    found = unknown_config_keys(set(SETTING_NAMES))
    assert sorted(found, key=lambda kv: kv[0]) == [
        ("api_kee", "api_key"), ("ingestion_lagg", "ingestion_lag"), ("strat_date", "start_date"),
        ("workres", "workers"), ("zzz", None),
    ]
    everything = set(SETTING_NAMES) | {"strat_date", "api_kee", "ingestion_lagg", "workres", "zzz"}
    assert unknown_config_keys(everything) == []


def test_a_broken_config_file_is_left_to_dlt_to_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text('[sources.posthog]\nstart_date = "2025-06-01\n')
    monkeypatch.chdir(tmp_path)
    assert all(key != "start_date" for key, _ in unknown_config_keys(set(SETTING_NAMES)))


# ------------------------------------------------------------------------------------------------ explain
class StepFailed(Exception):
    """Shaped like dlt's PipelineStepFailed: the real error in `.exception`."""

    def __init__(self, exception: BaseException) -> None:
        super().__init__("Pipeline execution failed at stage extract when processing package 1 with exception:")
        self.exception = exception


def test_an_interrupt_anywhere_in_the_chain_is_exit_130() -> None:
    try:
        try:
            raise StopIteration
        except StopIteration:
            raise KeyboardInterrupt from None
    except KeyboardInterrupt as interrupt:
        wrapped = StepFailed(interrupt)
    assert explain(wrapped) == (130, INTERRUPTED)
    assert explain(KeyboardInterrupt()) == (130, INTERRUPTED)


def test_the_os_error_and_its_folder_are_named_through_dlts_wrapper() -> None:
    error = PermissionError(13, "Permission denied")
    error.filename = "/data/out/warehouse.duckdb"
    code, message = explain(StepFailed(error))
    assert code == 2
    assert message == ("cannot write /data/out/warehouse.duckdb (folder /data/out): Permission denied; check the "
                       "path and its permissions")
    text_only = StepFailed(RuntimeError('IO Error: Cannot open file "/data/ro/w.duckdb": Read-only file system'))
    assert explain(text_only) == (2, "cannot write /data/ro/w.duckdb (folder /data/ro): Read-only file system; check "
                                     "the path and its permissions")


def test_missing_scope_advice_is_added_once() -> None:
    error = PermissionDeniedError("PostHog refused organizations: API key missing required scope 'organization:read'",
                                  scope="organization:read")
    code, message = explain(StepFailed(error))
    assert code == 3 and message.count("add the scope 'organization:read' to the key") == 1


def test_an_unwritable_folder_is_named_with_the_setting_to_change(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(ConfigurationError, match=r"cannot write to the folder .*plain-file for the DuckDB file "
                                                 r"w\.duckdb \(it is a file, not a folder\); choose a writable path "
                                                 r"with DESTINATION__DUCKDB__CREDENTIALS"):
        check_writable_folder(tmp_path / "plain-file", "the DuckDB file w.duckdb", "DESTINATION__DUCKDB__CREDENTIALS")
    with pytest.raises(ConfigurationError, match=r"\(Not a directory\)"):
        check_writable_folder(tmp_path / "plain-file" / "sub", "x", "Y")
    check_writable_folder(tmp_path / "new" / "folder", "x", "Y")
    assert (tmp_path / "new" / "folder").is_dir()


def test_version_names_ours_and_dlts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("posthog-pipeline ") and "(dlt 1." in out


def test_a_project_token_is_told_where_its_own_posthog_makes_personal_keys() -> None:
    from posthog_source.config import SourceSettings
    from posthog_source.errors import AuthenticationError

    with pytest.raises(AuthenticationError) as refused:
        SourceSettings.parse(api_key="phc_" + "a" * 40, host="https://posthog.example.com")
    assert "https://posthog.example.com/settings/user-api-keys" in str(refused.value)
    assert "us.posthog.com" not in str(refused.value)
    with pytest.raises(AuthenticationError, match="https://eu.posthog.com/settings/user-api-keys"):
        SourceSettings.parse(api_key="phc_" + "a" * 40, host="eu")


def test_a_missing_destination_field_is_named_with_its_variable(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: `Missing 1 field(s) ... credentials` (the field name only with --debug)."""
    for name, value in {"HOST": "127.0.0.1", "USERNAME": "loader", "DATABASE": "analytics"}.items():
        monkeypatch.setenv(f"DESTINATION__POSTGRES__CREDENTIALS__{name}", value)
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    monkeypatch.setenv("SOURCES__POSTHOG__API_KEY", "phx_" + "a" * 40)
    monkeypatch.setenv("SOURCES__POSTHOG__HOST", "http://127.0.0.1:9")
    assert main(["run", "--destination", "postgres", "--resources", "projects"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("error: missing configuration: credentials.password (set "
                   "DESTINATION__POSTGRES__CREDENTIALS__PASSWORD); or give them in .dlt/secrets.toml")
