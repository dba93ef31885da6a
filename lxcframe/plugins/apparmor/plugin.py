"""The AppArmor plugin's hooks, bound to the host paths and cache directory it was built with.

The builtin plugin (:mod:`lxcframe.plugins.apparmor`) is an instance looking at the real ``/sys``,
``/proc`` and ``apparmor_parser``; tests build others over a faked tree. Nothing is detected when
an instance is made: every hook reads what it needs when it runs.

The plugin never calls itself unavailable: without AppArmor in the kernel the mount entries of
``lxc.apparmor.allow_nesting`` still apply, ``generated`` profiles are still checked by compiling
them, and ``lxcframe check`` says why AppArmor is not used. The other keys are then ignored, with
a log line, as LXC's nop driver does.
"""

from __future__ import annotations

import os

from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import AttachChildContext, AttachContext, ChildContext, HostContext
from lxcframe.hooks import hookimpl
from lxcframe.plugins.apparmor import host as detection
from lxcframe.plugins.apparmor import label as attr
from lxcframe.plugins.apparmor import store, validate
from lxcframe.plugins.apparmor.host import HostPaths
from lxcframe.plugins.apparmor.naming import profile_names
from lxcframe.plugins.apparmor.nesting import mount_nesting_helpers
from lxcframe.plugins.apparmor.settings import UNCONFINED, AppArmorSettings, key_specs, settings_of
from lxcframe.plugins.apparmor.start import AppArmorLabel, AppArmorRecord, current_label, prepare, release
from lxcframe.probe import Probe
from lxcframe.stash import StashKey
from lxcframe.state import ContainerState

#: The open ``/proc/self/attr`` file the child changes its label through, opened before pivot_root.
_LABEL_ATTR = StashKey[int]("AppArmor label attribute")

DEFAULT_CACHE_DIR = "/var/cache/lxcframe/apparmor"
#: Overrides the parser's binary cache directory (e.g. to keep it on a persistent volume).
CACHE_DIR_ENV = "LXCFRAME_APPARMOR_CACHE_DIR"


class AppArmorPlugin:
    def __init__(self, paths: HostPaths | None = None, cache_dir: str | None = None) -> None:
        self.paths = paths or HostPaths()
        self._cache_dir = cache_dir

    @property
    def cache_dir(self) -> str:
        return self._cache_dir or os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR

    # --- registration ------------------------------------------------------------------------

    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return key_specs()

    @hookimpl
    def lxcframe_check(self) -> list[Probe]:
        from lxcframe.plugins.apparmor.probe import probes

        return probes(self.paths)

    # --- start, host side --------------------------------------------------------------------

    @hookimpl
    def lxcframe_validate(self, config: ContainerConfig) -> list[str]:
        return validate.problems(config, self.paths)

    @hookimpl
    def lxcframe_plan(self, config: ContainerConfig) -> AppArmorSettings:
        return settings_of(config)

    @hookimpl
    def lxcframe_pre_start(self, ctx: HostContext) -> None:
        settings = ctx.plan.part(AppArmorSettings)
        kernel = detection.detect_kernel(self.paths)
        if not kernel.enabled.value:
            if settings.without_kernel_effect:
                ctx.log.info("AppArmor is not enabled in the kernel: ignoring its keys",
                             keys=list(settings.without_kernel_effect), reason=kernel.enabled.why)
            return
        label = prepare(ctx, kernel, self.paths, self.cache_dir, settings)
        if label is not None:
            ctx.handover.send(AppArmorLabel(label))

    # --- start, child side -------------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def lxcframe_child_pre_pivot(self, ctx: ChildContext) -> None:
        # The nesting helpers go below /dev, so they must wait for the devices stage (which mounts
        # a fresh tmpfs on /dev, after the mounts stage): the first thing after it is this stage,
        # and tryfirst puts them before lxc.hook.mount, as LXC has its mount entries done by then.
        settings = ctx.plan.part_or_none(AppArmorSettings)
        if settings is not None and settings.allow_nesting:
            mount_nesting_helpers(ctx)
        if ctx.received.message(AppArmorLabel) is not None:
            # After pivot_root the host's /proc is out of reach (and the container may have none).
            ctx.stash[_LABEL_ATTR] = attr.open_label_attr(self.paths)

    @hookimpl(tryfirst=True)
    def lxcframe_child_security(self, ctx: ChildContext) -> None:
        # First of the security steps: the profile must allow what the others still do.
        fd = ctx.stash.pop(_LABEL_ATTR, None)
        wanted = ctx.received.message(AppArmorLabel)
        if fd is None or wanted is None:
            return
        try:
            attr.change_profile(fd, wanted.label)
        finally:
            os.close(fd)

    # --- attach ------------------------------------------------------------------------------

    @hookimpl
    def lxcframe_attach(self, ctx: AttachContext) -> None:
        init_pid = ctx.state.init_pid
        if not init_pid or not detection.detect_kernel(self.paths).enabled.value:
            return
        # What init runs under now, as LXC does: the container may have changed its own profile.
        label = current_label(self.paths, str(init_pid))
        if label is not None and label != UNCONFINED:
            ctx.handover.send(AppArmorLabel(label))

    @hookimpl(tryfirst=True)
    def lxcframe_attach_child(self, ctx: AttachChildContext) -> None:
        wanted = ctx.message(AppArmorLabel)
        if wanted is None:
            return
        fd = attr.open_label_attr(self.paths, ctx.proc_self)
        try:
            attr.change_profile(fd, wanted.label)
        finally:
            os.close(fd)

    # --- after the container -----------------------------------------------------------------

    @hookimpl
    def lxcframe_cleanup(self, state: ContainerState) -> None:
        record = state.record(AppArmorRecord)
        loaded = record.loaded if record is not None else None
        if loaded is not None and os.path.exists(loaded.profile_file):
            release(loaded, was_loaded=True)

    @hookimpl
    def lxcframe_destroy(self, name: str, lxcpath: str) -> None:
        # A profile left loaded (no CAP_MAC_ADMIN at stop) keeps its file; with lxc.rootfs.managed = 0
        # the container's directory stays, but this generated file is ours to remove.
        store.remove(profile_names(name, lxcpath).file)
