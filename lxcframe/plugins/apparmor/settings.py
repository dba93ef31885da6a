"""The ``lxc.apparmor.*`` keys and the settings a container's config gives them."""

from __future__ import annotations

import attrs

from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.config.model import ContainerConfig

PROFILE = "lxc.apparmor.profile"
ALLOW_INCOMPLETE = "lxc.apparmor.allow_incomplete"
ALLOW_NESTING = "lxc.apparmor.allow_nesting"
RAW = "lxc.apparmor.raw"

#: Special values of lxc.apparmor.profile; anything else names a profile loaded by the administrator.
UNCONFINED = "unconfined"
UNCHANGED = "unchanged"
GENERATED = "generated"


def key_specs() -> list[KeySpec]:
    return [
        KeySpec(PROFILE,
                doc="profile for init: a name, 'unconfined', 'unchanged' or 'generated' (one per container)"),
        KeySpec(ALLOW_INCOMPLETE, boolean01, doc="1: start confined even without kernel mount mediation"),
        KeySpec(ALLOW_NESTING, boolean01,
                doc="1: nesting rules in the generated profile, and /dev/.lxc/{proc,sys} mounted for nested runtimes"),
        KeySpec(RAW, multi=True, doc="a line appended verbatim to the generated profile (empty value clears)"),
    ]


@attrs.frozen
class AppArmorSettings:
    #: ``None`` when unset: the default profile of the host's kind then applies.
    profile: str | None
    allow_incomplete: bool
    allow_nesting: bool
    raw: tuple[str, ...]
    #: The keys set that only matter with AppArmor in the kernel (all but allow_nesting), to say they
    #: are ignored on a host without it.
    without_kernel_effect: tuple[str, ...] = ()

    @property
    def generated(self) -> bool:
        return self.profile == GENERATED


def settings_of(config: ContainerConfig) -> AppArmorSettings:
    return AppArmorSettings(
        profile=config.get(PROFILE),
        allow_incomplete=bool(config.get(ALLOW_INCOMPLETE, False)),
        allow_nesting=bool(config.get(ALLOW_NESTING, False)),
        raw=tuple(config.get_all(RAW)),
        without_kernel_effect=tuple(key for key in config.keys_under("lxc.apparmor.") if key != ALLOW_NESTING),
    )
