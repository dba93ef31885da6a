"""``lxc.cgroup2.devices.allow``/``deny``: the rules read as LXC reads them, folded into one policy.

cgroup2 has no ``devices.*`` files: a device program decides (:mod:`.device_program`). The rules are
LXC's: ``TYPE MAJOR:MINOR ACCESS`` (``a``/``b``/``c``, a number or ``*``, letters of ``rwm``), a
``/dev/PATH ACCESS`` in ``devices.allow``, and the bare ``a`` that sets the default and drops every
rule before it: ``devices.deny = a`` makes an allow-list (the default when it is not given),
``devices.allow = a`` a deny-list. The rules are taken in config order, and a later rule for the same
device and access replaces an earlier one. Only the rules that differ from the default are enforced,
so a ``deny`` inside an allow-list takes back an earlier ``allow`` of exactly the same device and
access, never a part of a wider one (after ``allow c *:* m``, ``deny c 1:3 m`` changes nothing): the
kernel sees a list of exceptions, as LXC builds it.

Unlike LXC, which attaches no program while no exception is left (so a lone ``devices.deny = a``
lets every device through there), the policy is enforced as written: ``deny = a`` alone denies all.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from lxcframe.plugins.cgroup.limits import Limit, device_rule

#: The access bits of the kernel's device context (BPF_DEVCG_ACC_*).
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}
ALL_ACCESS = 7
#: The device types of the kernel's device context (BPF_DEVCG_DEV_*); 0 matches both.
TYPES = {"a": 0, "b": 1, "c": 2}
#: The largest device number an instruction's immediate holds.
MAX_NUMBER = 2**31 - 1
ALLOW, DENY = "devices.allow", "devices.deny"


@attrs.frozen
class DeviceRule:
    """One rule: which devices (``None``: any major/minor) and which accesses it allows or denies."""

    type: str
    major: int | None
    minor: int | None
    access: int
    allow: bool

    @property
    def device(self) -> tuple[str, int | None, int | None, int]:
        return (self.type, self.major, self.minor, self.access)


@attrs.frozen
class DevicePolicy:
    """What the device program enforces: the default, and the rules that are exceptions to it."""

    allow_by_default: bool
    exceptions: tuple[DeviceRule, ...]


def _number(text: str, what: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"expected a {what} number or '*', got {text!r}")
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError(f"{what} number {value} is too large")
    return value


def _access(text: str) -> int:
    if not 1 <= len(text) <= 3 or any(letter not in ACCESS_BITS for letter in text):
        raise ValueError(f"expected an access of up to three of the letters r, w, m, got {text!r}")
    mask = 0
    for letter in text:
        mask |= ACCESS_BITS[letter]
    return mask


def parse_rule(file: str, value: str) -> DeviceRule | None:
    """One ``devices.allow``/``devices.deny`` value; ``None`` for the bare ``a`` that sets the default
    (``ValueError`` for anything else that is no rule)."""
    allow = file == ALLOW
    text = value.strip()
    if text == "a":
        return None
    if text.startswith("/"):
        if not allow:
            raise ValueError("a device path is taken by devices.allow only; "
                             "write the rule as 'c|b MAJOR:MINOR ACCESS'")
        text = device_rule(text)
    words = text.split()
    if len(words) != 3:
        raise ValueError(f"{value!r}: expected 'a', or 'TYPE MAJOR:MINOR ACCESS' (e.g. 'c 1:3 rwm')")
    kind, numbers, access = words
    if kind not in TYPES:
        raise ValueError(f"expected a device type a, b or c, got {kind!r}")
    major, sep, minor = numbers.partition(":")
    if not sep:
        raise ValueError(f"expected MAJOR:MINOR, got {numbers!r}")
    return DeviceRule(kind, _number(major, "major"), _number(minor, "minor"), _access(access), allow)


def device_limits(limits: Iterable[Limit]) -> list[Limit]:
    """The device rules among cgroup2 limits, in the order given."""
    return [lim for lim in limits if lim.file in (ALLOW, DENY)]


def fold(limits: Iterable[Limit]) -> DevicePolicy:
    """The policy of the device rules ``limits`` (in config order); ``ValueError`` names the line."""
    allow_by_default = False
    rules: dict[tuple[str, int | None, int | None, int], DeviceRule] = {}
    for limit in limits:
        try:
            rule = parse_rule(limit.file, limit.value)
        except ValueError as err:
            raise ValueError(f"{limit.where}: {limit.key}: {err}") from None
        if rule is None:
            allow_by_default = limit.file == ALLOW
            rules.clear()
            continue
        rules[rule.device] = rule  # a replaced rule keeps its place, as it does in LXC's list
    return DevicePolicy(allow_by_default, tuple(r for r in rules.values() if r.allow != allow_by_default))


def fold_into(policy: DevicePolicy, file: str, rule: DeviceRule | None) -> DevicePolicy:
    """``policy`` once one more rule of ``file`` is taken, as if it came after every rule folded into it.

    The exceptions are the whole of what the earlier rules left (a rule of the default's kind was
    dropped, and taking it back changes nothing), and all of them have the same verdict, so their
    order does not matter: folding the policy's exceptions and the new rule gives what folding every
    rule in order would have given.
    """
    if rule is None:  # the bare 'a': a new default, no exception left
        return DevicePolicy(file == ALLOW, ())
    rules = {r.device: r for r in policy.exceptions}
    rules[rule.device] = rule
    default = policy.allow_by_default
    return DevicePolicy(default, tuple(r for r in rules.values() if r.allow != default))


def rule_text(rule: DeviceRule) -> str:
    """The rule as ``TYPE MAJOR:MINOR ACCESS``, as cgroup v1's ``devices.list`` shows one."""
    def number(value: int | None) -> str:
        return "*" if value is None else str(value)

    access = "".join(letter for letter in "rwm" if rule.access & ACCESS_BITS[letter])
    return f"{rule.type} {number(rule.major)}:{number(rule.minor)} {access}"


def v1_list(policy: DevicePolicy) -> list[str]:
    """The lines cgroup v1's ``devices.list`` would show for the policy: ``a *:* rwm`` when every
    device is allowed but the exceptions (v1 does not list what a deny-list denies), else what it allows."""
    if policy.allow_by_default:
        return ["a *:* rwm"]
    return [rule_text(rule) for rule in policy.exceptions]
