"""The host side of a start with AppArmor in the kernel: which label init gets, and the generated profile.

Decided in the monitor before the init child exists (stage ``pre-start``), as LXC's driver does:

* ``unchanged`` leaves init with the monitor's own label;
* ``generated`` writes ``LXCPATH/NAME/apparmor/<namespace>`` and loads it (into a policy namespace of
  the container's own where the kernel can stack);
* unset means ``lxc-container-default-cgns`` (``lxc-container-default`` without cgroup namespaces);
* a confined monitor that cannot stack can only keep its own label;
* without kernel mount mediation a confined container is refused unless
  ``lxc.apparmor.allow_incomplete = 1``, since its profile could not restrict mounts.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import attrs

from lxcframe import idmap
from lxcframe.config.model import ContainerConfig
from lxcframe.context import HostContext
from lxcframe.plugins.apparmor import store
from lxcframe.plugins.apparmor.host import HostPaths, KernelFacts, ParserInfo, detect_parser
from lxcframe.plugins.apparmor.naming import ProfileNames, profile_names
from lxcframe.plugins.apparmor.parser import Parser, ParserError
from lxcframe.plugins.apparmor.profile import ProfileFeatures, render
from lxcframe.plugins.apparmor.settings import ALLOW_INCOMPLETE, UNCHANGED, UNCONFINED, AppArmorSettings

DEFAULT_PROFILE = "lxc-container-default"
DEFAULT_PROFILE_CGNS = "lxc-container-default-cgns"


class AppArmorError(Exception):
    """AppArmor cannot be set up as the config asks."""


def current_label(paths: HostPaths, pid: str = "self") -> str | None:
    """The AppArmor label of a process, without the mode (``lxc-foo (enforce)`` -> ``lxc-foo``)."""
    for attr in ("attr/apparmor/current", "attr/current"):
        try:
            with open(paths.procfs(f"{pid}/{attr}"), encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        except OSError:
            return None
        words = text.split("\n", 1)[0].split(" ", 1)
        return words[0] or None
    return None


def _confined(label: str | None) -> bool:
    return label is not None and label != UNCONFINED


def features_for(kernel: KernelFacts, parser: ParserInfo, settings: AppArmorSettings,
                 config: ContainerConfig) -> ProfileFeatures:
    return ProfileFeatures(
        unix=parser.supports_unix,
        cgroupns=kernel.cgroupns.value,
        stacking=kernel.policy_namespace,
        nesting=settings.allow_nesting,
        unprivileged=bool(idmap.config_entries(config)) or kernel.host_unprivileged.value,
        raw=settings.raw,
    )


@attrs.frozen
class Loaded:
    """A generated profile loaded for one start: what its undo (or a later cleanup) must release."""

    profile_file: str
    cache_dir: str
    parser: str
    namespace_dir: str | None
    #: May unload at stop (see :attr:`KernelFacts.admin`); without, the profile stays loaded, as with LXC.
    admin: bool



@attrs.frozen
class AppArmorRecord:
    """What a start saves in the state file: the label init was given, the generated profile loaded."""

    label: str | None = None
    loaded: Loaded | None = None


@attrs.frozen
class AppArmorLabel:
    """Handed to the init child (at its first barrier) and to an attaching child: the label to take."""

    label: str


def _record(ctx: HostContext, **changes: Any) -> None:
    ctx.state_records.put(attrs.evolve(ctx.state_records.get(AppArmorRecord) or AppArmorRecord(), **changes))


def release(loaded: Loaded, was_loaded: bool) -> None:
    """Undo :func:`load_generated`: unload, remove the file and its directory, remove the namespace.

    After a failed load everything goes; after a successful one only with :attr:`Loaded.admin`.
    """
    if was_loaded and not loaded.admin:
        return
    problems: list[str] = []
    if was_loaded:
        try:
            Parser(loaded.parser, loaded.cache_dir).unload(loaded.profile_file)
        except ParserError as err:
            problems.append(f"unloading the generated AppArmor profile: {err}")
    for step, path in ((store.remove, loaded.profile_file), (store.remove_dir, loaded.namespace_dir)):
        if path is None:
            continue
        try:
            step(path)
        except OSError as err:
            problems.append(f"removing {path}: {err.strerror}")
    if problems:
        raise AppArmorError("; ".join(problems))


def load_generated(ctx: HostContext, kernel: KernelFacts, parser: ParserInfo, paths: HostPaths,
                   cache_dir: str, settings: AppArmorSettings) -> ProfileNames:
    """Write and load the container's generated profile; its undo is on ``ctx.undo`` before anything exists."""
    assert parser.path is not None
    plan = ctx.plan
    names = profile_names(plan.name, plan.lxcpath)
    loaded = Loaded(names.file, cache_dir, parser.path,
                    names.namespace_dir(paths.sysfs) if kernel.policy_namespace else None, kernel.admin)
    done = [False]
    ctx.undo.push("generated AppArmor profile", lambda: release(loaded, done[0]))
    if loaded.namespace_dir is not None:
        try:
            os.mkdir(loaded.namespace_dir, 0o755)
        except FileExistsError:
            pass  # left by an earlier start whose monitor died; reusing it is what LXC does
        except OSError as err:
            raise AppArmorError(f"cannot create AppArmor policy namespace {loaded.namespace_dir}: "
                                f"{os.strerror(err.errno or errno.EIO)}") from None
    os.makedirs(cache_dir, 0o755, exist_ok=True)
    text = render(names, features_for(kernel, parser, settings, plan.config))
    rewritten = store.write_if_changed(names.file, text)
    try:
        Parser(parser.path, cache_dir).load(names.file)
    except ParserError as err:
        raise AppArmorError(f"Failed to load generated AppArmor profile: {err}") from None
    done[0] = True
    _record(ctx, loaded=loaded)
    ctx.log.info("generated AppArmor profile loaded", profile=names.profile, file=names.file,
                 rewritten=rewritten, namespace=loaded.namespace_dir)
    return names


def prepare(ctx: HostContext, kernel: KernelFacts, paths: HostPaths, cache_dir: str,
            settings: AppArmorSettings) -> str | None:
    """Decide init's label (``None``: leave it as it is) and load a generated profile if asked for."""
    log = ctx.log
    if settings.profile == UNCHANGED:
        log.info("AppArmor profile left unchanged, as configured")
        return None
    if settings.raw and not settings.generated:
        log.info("lxc.apparmor.raw is used only with lxc.apparmor.profile = generated; ignored")
    label = settings.profile
    parser: ParserInfo | None = None
    if settings.generated:
        parser = detect_parser(paths)
        if not parser.available:
            raise AppArmorError(f"Cannot use generated profile: apparmor_parser not available ({parser.why})")
        label = profile_names(ctx.plan.name, ctx.plan.lxcpath).label(kernel.policy_namespace)
    mine = current_label(paths)
    if not kernel.can_stack.value and _confined(mine):
        if label is None or label == mine:
            log.info("already confined by AppArmor; keeping the label", label=mine)
            return None
        raise AppArmorError(f"already confined by AppArmor profile {mine!r} and the kernel cannot stack "
                            f"profiles: cannot change to {label!r}")
    if label is None:
        label = DEFAULT_PROFILE_CGNS if kernel.cgroupns.value else DEFAULT_PROFILE
    if not kernel.mount_mediation.value and label != UNCONFINED:
        if not settings.allow_incomplete:
            raise AppArmorError(f"incomplete AppArmor support in this kernel ({kernel.mount_mediation.why}): "
                                f"profile {label!r} could not restrict mounts; set {ALLOW_INCOMPLETE} = 1 "
                                "to start this container anyway")
        log.warning("incomplete AppArmor support in this kernel: mounts are not restricted",
                    reason=kernel.mount_mediation.why)
    if parser is not None:
        load_generated(ctx, kernel, parser, paths, cache_dir, settings)
    if label == UNCONFINED and not _confined(mine):
        return None  # nothing would change
    _record(ctx, label=label)
    return label
