"""Resource limits: ``lxc.prlimit.<resource> = soft[:hard]`` applied to the container's init.

Resource names are LXC's (the ``RLIMIT_`` name in lower case); a value is a number or
``unlimited``, and a single value sets both limits. LXC sets the limits on init from the starting
process; here init sets them on itself at the end of the ``pre-pivot`` stage, so that they hold
from the exec on and are set before capabilities are dropped or seccomp narrows what init may do.
"""

from __future__ import annotations

import resource

import attrs

from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl

PREFIX = "lxc.prlimit."

#: LXC's names for the resources setrlimit(2) knows, with Linux's numbers (asm-generic/resource.h):
#: Python's resource module lacks some of them (RLIMIT_LOCKS), and setrlimit takes any number.
RESOURCES: dict[str, int] = {
    "cpu": 0,
    "fsize": 1,
    "data": 2,
    "stack": 3,
    "core": 4,
    "rss": 5,
    "nproc": 6,
    "nofile": 7,
    "memlock": 8,
    "as": 9,
    "locks": 10,
    "sigpending": 11,
    "msgqueue": 12,
    "nice": 13,
    "rtprio": 14,
    "rttime": 15,
}


def _limit(word: str) -> int:
    if word == "unlimited":
        return resource.RLIM_INFINITY
    if not (word.isascii() and word.isdigit()):
        raise ValueError(f"{word!r} is not a number or 'unlimited'")
    number = int(word)
    # RLIM_INFINITY is the largest value the kernel takes; anything above cannot be meant.
    if number >= 2**64 - 1:
        raise ValueError(f"{word!r} is too large (use 'unlimited')")
    return number


def parse_limits(value: str) -> tuple[int, int]:
    """``soft[:hard]`` -> (soft, hard); one value sets both."""
    soft_text, colon, hard_text = value.strip().partition(":")
    soft = _limit(soft_text.strip())
    hard = _limit(hard_text.strip()) if colon else soft
    if _above(soft, hard):
        raise ValueError("the soft limit is above the hard limit")
    return soft, hard


def _above(soft: int, hard: int) -> bool:
    if hard == resource.RLIM_INFINITY:
        return False
    return soft == resource.RLIM_INFINITY or soft > hard


def _unknown_resource(value: str) -> tuple[int, int]:
    # Any lxc.prlimit.* key that is not one of RESOURCES ends up here (exact keys win the lookup).
    raise ValueError(f"unknown resource (expected one of {', '.join(RESOURCES)})")


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    specs = [
        KeySpec(PREFIX + name, parse_limits, doc=f"soft[:hard] limit of RLIMIT_{name.upper()} ('unlimited')")
        for name in RESOURCES
    ]
    specs.append(KeySpec(PREFIX + "*", _unknown_resource, doc="resource limits of init (LXC's resource names)"))
    return specs


@attrs.frozen
class Prlimit:
    """One limit the config sets; ``where`` is ``FILE:LINE: `` of its line, for the kernel's refusal."""

    key: str
    resource: int
    soft: int
    hard: int
    where: str


@attrs.frozen
class PrlimitPart:
    """The limits init sets on itself, decided by the caller (``lxcframe_plan``)."""

    limits: tuple[Prlimit, ...]


def configured_limits(config: ContainerConfig) -> tuple[Prlimit, ...]:
    """Every limit the config sets, in :data:`RESOURCES` order."""
    found = []
    for name, number in RESOURCES.items():
        limits = config.get(PREFIX + name)
        if limits is not None:
            found.append(Prlimit(PREFIX + name, number, limits[0], limits[1], config.where(PREFIX + name)))
    return tuple(found)


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> PrlimitPart | None:
    limits = configured_limits(config)
    return PrlimitPart(limits) if limits else None


def _show(number: int) -> str:
    return "unlimited" if number == resource.RLIM_INFINITY else str(number)


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    # Before the security stage: the LSM label comes first there, and raising a hard limit needs
    # the capabilities that stage drops.
    part = ctx.plan.part_or_none(PrlimitPart)
    for limit in part.limits if part else ():
        key, number, soft, hard = limit.key, limit.resource, limit.soft, limit.hard
        try:
            resource.setrlimit(number, (soft, hard))
        except (ValueError, OSError) as err:
            # Python turns EPERM into "not allowed to raise maximum limit": raising a hard limit
            # needs CAP_SYS_RESOURCE in the initial user namespace, which a host may not grant.
            prefix = limit.where
            current = resource.getrlimit(number)
            raise StageError(
                "pre-pivot", "prlimit",
                f"{prefix}{key} = {_show(soft)}:{_show(hard)}: the kernel refused it ({err}); "
                f"current limits are {_show(current[0])}:{_show(current[1])}",
            ) from None
        ctx.log.debug("resource limit set", key=key, soft=_show(soft), hard=_show(hard))
