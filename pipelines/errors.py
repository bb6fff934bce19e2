"""What a failure becomes for the user: an exit code and one line, with any PostHog key masked.

The command line (pipelines/cli.py) prints what `explain` returns; the table of exit codes lives here so that
scripts, orchestrators and tests read one definition:

    0 success; 1 anything else (the line ends "rerun with --debug"); 2 bad input or configuration;
    3 authentication or permission; 4 `verify` found differences; 5 some tables failed (each named, every
    other table loaded and committed); 130 interrupted (the next run continues where this one stopped).
"""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path
from typing import Any

from posthog_source.errors import PermissionDeniedError, PostHogSourceError

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_DIFFERENCES = 4  # `verify`: PostHog and the destination differ
EXIT_SOME_TABLES_FAILED = 5  # some tables failed (each named), every other table loaded and committed
INTERRUPTED = "interrupted; the next run continues where this one stopped"
# A destination or working folder that cannot be written: bad configuration, not a crash.
_UNWRITABLE = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS})
_KEY_PATTERN = re.compile(r"(ph[xcs]_)[A-Za-z0-9_\-]{6,}")


# -- masking keys --------------------------------------------------------------------------------------------
def scrub(text: str) -> str:
    """Last line of defence: whatever we print, a PostHog key in it is masked."""
    return _KEY_PATTERN.sub(r"\1***", text)


class ScrubbingFormatter(logging.Formatter):
    """Log lines with any PostHog key masked (the handlers of `posthog-pipeline`, cli.setup_logging)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


# -- explaining a failure ------------------------------------------------------------------------------------
def error_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every error behind it: causes, contexts, and the `exception` dlt's step errors wrap."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        todo.extend([getattr(current, "exception", None), current.__cause__, current.__context__])
    return chain


_OS_ERROR_TEXT = re.compile(r"""["']?(?P<path>/[^"':]*)["']?:?\s*(?P<reason>Permission denied|Read-only file system)""")


def missing_fields_line(error: BaseException, text: str) -> str:
    """dlt's missing-configuration error as one line naming each missing field and the environment variable
    that sets it (dlt's own line names only the outer field, `credentials`, and the rest needs --debug)."""
    missing: list[str] = []

    def walk(traces: Any, prefix: str) -> None:
        for name, found in (traces or {}).items():
            nested = [t for t in found if hasattr(t, "traces")]
            if nested:
                walk(nested[0].traces, f"{prefix}{name}.")
                continue
            keys = [t.key for t in found if "environment" in str(getattr(t, "provider", "")).lower()]
            env = next((k for k in keys if k.startswith(("DESTINATION__", "SOURCES__"))), keys[-1] if keys else None)
            missing.append(f"{prefix}{name}" + (f" (set {env})" if env else ""))

    walk(getattr(error, "traces", None), "")
    if not missing:
        return f"missing configuration: {text.splitlines()[0]}"
    return f"missing configuration: {'; '.join(missing)}; or give them in .dlt/secrets.toml"


def explain(exc: BaseException) -> tuple[int, str]:
    """Exit code and one line for any failure, looking through the wrappers dlt puts around errors."""
    chain = error_chain(exc)
    if any(isinstance(error, KeyboardInterrupt) for error in chain):  # dlt's SignalReceivedException is one too
        return EXIT_INTERRUPTED, INTERRUPTED
    for error in chain:
        if isinstance(error, PostHogSourceError):
            message = str(error)
            if isinstance(error, PermissionDeniedError) and error.scope and "add the scope" not in message:
                message += f"; add the scope '{error.scope}' to the key"
            return error.exit_code, message
    for error in reversed(chain):  # innermost first: the OS error, not dlt's "failed at stage load"
        if isinstance(error, OSError) and error.errno in _UNWRITABLE:
            target = error.filename or "the destination"
            folder = Path(str(target)).parent if error.filename else None
            where = f" (folder {folder})" if folder is not None else ""
            return EXIT_BAD_INPUT, f"cannot write {target}{where}: {error.strerror}; check the path and its permissions"
    for error in chain:
        name = type(error).__name__
        text = str(error)
        if name == "ConfigFieldMissingException":
            if "api_key" in text:
                return EXIT_BAD_INPUT, (
                    "the PostHog API key is not configured; set SOURCES__POSTHOG__API_KEY or "
                    "api_key under [sources.posthog] in .dlt/secrets.toml"
                )
            if "bucket_url" in text:
                return EXIT_BAD_INPUT, (
                    "the filesystem destination needs a bucket_url; set DESTINATION__FILESYSTEM__BUCKET_URL or "
                    "bucket_url under [destination.filesystem] in .dlt/config.toml"
                )
            return EXIT_BAD_INPUT, missing_fields_line(error, text)
        if type(error).__module__.split(".")[0] in ("tomlkit", "tomllib", "toml") or "TomlDecodeError" in name:
            return EXIT_BAD_INPUT, f"a .dlt config file has a syntax error ({text.splitlines()[0]}); fix it"
        if "Could not set lock" in text or "Conflicting lock" in text:
            return EXIT_BAD_INPUT, (
                "the DuckDB file is in use by another process; close it (or wait for the other run) and try again"
            )
        if name == "DestinationCapabilitiesException" and "merge strategy" in text:
            return EXIT_BAD_INPUT, (
                f"{text.splitlines()[0]}; with --table-format, choose --resources whose tables append, upsert or "
                "replace (events, projects, organizations)"
            )
    for error in reversed(chain):
        match = _OS_ERROR_TEXT.search(str(error))
        if match:
            path = match.group("path").strip()
            return EXIT_BAD_INPUT, (
                f"cannot write {path} (folder {Path(path).parent}): {match.group('reason')}; check the path and its "
                "permissions"
            )
    for error in chain:
        name = type(error).__name__
        if name == "ConnectionError" or name.endswith("ConnectionError"):
            return EXIT_BAD_INPUT, "cannot reach the PostHog host; check host (us, eu or your URL) and the network"
    first = chain[-1] if chain else exc
    return (
        EXIT_ERROR,
        f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''} (rerun with --debug)",
    )
