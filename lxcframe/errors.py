"""The exceptions lxcframe raises to its callers; each renders as one clear line."""

from __future__ import annotations


class LxcframeError(Exception):
    """Base of every error lxcframe reports to a user as one line."""


class ConfigError(LxcframeError):
    """A config problem, located at a file, line and key where there is one."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
        value: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.value = value
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        what = ""
        if key is not None:
            # A key as given by a caller may hold a line break: shown quoted, the message stays one line.
            shown = key if key.isprintable() else repr(key)
            what = f"{shown} = {value!r}: " if value is not None else f"{shown}: "
        super().__init__(f"{where}{what}{message}")


class ConfigErrors(ConfigError):
    """Several config problems found in one pass, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.reason, path=first.path, line=first.line, key=first.key, value=first.value)
        if len(errors) > 1:
            self.args = ("; ".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return "; ".join(_plain(e) for e in self.errors)


def _plain(err: ConfigError) -> str:
    return Exception.__str__(err)


class PluginError(LxcframeError):
    """A plugin could not be loaded, enabled or disabled as asked."""


class ContainerError(LxcframeError):
    """An operation on a container failed (it does not exist, is running, is locked…)."""


class StageError(LxcframeError):
    """A stage failed; names the stage and the plugin responsible.

    ``in_start`` is False for a stage of a container already started (post-start, stop, post-stop)
    and for hooks outside a start (destroy…): their failure is not reported as a failed start.
    """

    def __init__(self, stage: str, plugin: str | None, message: str, errno: int | None = None, *,
                 in_start: bool = True) -> None:
        self.stage = stage
        self.plugin = plugin
        self.message = message
        self.errno = errno
        by = f" (plugin {plugin!r})" if plugin else ""
        what = f"start failed at stage {stage!r}" if in_start else f"stage {stage!r} failed"
        super().__init__(f"{what}{by}: {message}")


class UndoErrors(LxcframeError):
    """Undoing host state failed for one or more steps; every failure is listed."""

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"undo {what}: {err}" for what, err in failures))
