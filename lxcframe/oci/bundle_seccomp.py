"""``linux.seccomp`` (the runtime-spec's JSON form) as an LXC version 2 policy for the seccomp plugin.

The policy is written to the container's state directory and named by ``lxc.seccomp.profile``, so the
plugin reads, checks, stacks and compiles it as any LXC profile. As runc does: a rule whose action is
the default one is left out (libseccomp refuses it), and a rule comparing one argument twice becomes one
rule per comparison (libseccomp cannot AND two comparisons of the same argument). The filter answers
for the host's native ABI and its compat ABIs (the plugin stacks them), whatever ``architectures`` lists.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any

from lxcframe.oci.bundle_fields import StateFile, Translation

FIELD = "linux.seccomp"
POLICY_FILE = "seccomp.policy"
#: The spec's actions and LXC's words for them (errno's number follows).
ACTIONS = {"SCMP_ACT_KILL": "kill", "SCMP_ACT_KILL_THREAD": "kill", "SCMP_ACT_TRAP": "trap",
           "SCMP_ACT_ERRNO": "errno", "SCMP_ACT_ALLOW": "allow", "SCMP_ACT_LOG": "log",
           "SCMP_ACT_KILL_PROCESS": "kill_process"}
#: Actions the seccomp plugin has no word for.
REFUSED_ACTIONS = {
    "SCMP_ACT_TRACE": "no tracer is attached to a container",
    "SCMP_ACT_NOTIFY": "seccomp notification is not implemented",
}
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
_NAME = re.compile(r"[A-Za-z0-9_]+")
_ARCH = re.compile(r"SCMP_ARCH_[A-Z0-9_]+")


def translate(out: Translation, linux: dict[str, Any]) -> None:
    seccomp = out.obj(linux, "seccomp", "linux")
    if not seccomp:
        return
    default_errno = out.uint(seccomp, "defaultErrnoRet", FIELD) or errno.EPERM
    default = _action(out, seccomp, "defaultAction", FIELD, default_errno, required=True)
    for at, arch in out.strings(seccomp, "architectures", FIELD):
        if not _ARCH.fullmatch(arch):
            out.fail(at, f"{arch!r}: expected an architecture such as SCMP_ARCH_X86_64")
    out.refuse_present(seccomp, "flags", FIELD, "not supported: the seccomp plugin loads the filter without flags")
    for name in ("listenerPath", "listenerMetadata"):
        out.refuse_present(seccomp, name, FIELD, "not supported: seccomp notification is not implemented")
    out.refuse_unknown(seccomp, FIELD, ("defaultAction", "defaultErrnoRet", "architectures", "flags",
                                        "listenerPath", "listenerMetadata", "syscalls"))
    lines = ["2", f"{'denylist' if default == 'allow' else 'allowlist'} {default or 'kill'}"]
    for at, rule in out.objects(seccomp, "syscalls", FIELD):
        lines.extend(_rule(out, at, rule, default_errno, default))
    if default is None:
        return
    if out.state_dir is None:
        out.fail(FIELD, "the policy is written to the container's state directory, and none was given")
        return
    out.files.append(StateFile(POLICY_FILE, "\n".join(lines) + "\n"))
    out.add("lxc.seccomp.profile", os.path.join(out.state_dir, POLICY_FILE), FIELD)


def _action(out: Translation, parent: dict[str, Any], name: str, at: str, errno_ret: int,
            required: bool = False) -> str | None:
    """LXC's words for the action ``parent[name]`` (``errno N`` with ``errno_ret``); None when unusable."""
    action = out.string(parent, name, at)
    if action is None:
        if required or name not in parent:
            out.fail(f"{at}.{name}", "required")
        return None
    if action in REFUSED_ACTIONS:
        out.fail(f"{at}.{name}", f"{action}: not supported: {REFUSED_ACTIONS[action]}")
        return None
    word = ACTIONS.get(action)
    if word is None:
        out.fail(f"{at}.{name}", f"{action!r}: expected one of {', '.join([*ACTIONS, *REFUSED_ACTIONS])}")
        return None
    if word == "errno":
        if errno_ret > 4095:
            out.fail(f"{at}.{name}", f"errno {errno_ret}: expected 0 to 4095")
            return None
        return f"errno {errno_ret}"
    return word


def _rule(out: Translation, at: str, rule: dict[str, Any], default_errno: int, default: str | None) -> list[str]:
    out.refuse_unknown(rule, at, ("names", "action", "errnoRet", "args"))
    errno_ret = out.uint(rule, "errnoRet", at)
    action = _action(out, rule, "action", at, errno.EPERM if errno_ret is None else errno_ret)
    names = []
    for name_at, name in out.strings(rule, "names", at):
        if _NAME.fullmatch(name):
            names.append(name)
        else:
            out.fail(name_at, f"{name!r}: not a syscall name")
    if not names and "names" not in rule:
        out.fail(f"{at}.names", "required")
    args = [arg for arg in (_arg(out, arg_at, arg) for arg_at, arg in out.objects(rule, "args", at))
            if arg is not None]
    if action is None or action == default:
        return []
    indexes = [index for index, _ in args]
    # libseccomp ANDs the comparisons of one rule and cannot take two of the same argument: as runc, such
    # a rule becomes one rule per comparison.
    groups = [[arg] for arg in args] if len(set(indexes)) < len(indexes) else [args]
    return [f"{name} {action} {' '.join(text for _, text in group)}".rstrip() for name in names for group in groups]


def _arg(out: Translation, at: str, arg: dict[str, Any]) -> tuple[int, str] | None:
    index = out.uint(arg, "index", at)
    value = out.uint(arg, "value", at, 64)
    second = out.uint(arg, "valueTwo", at, 64) or 0
    op = out.string(arg, "op", at)
    out.refuse_unknown(arg, at, ("index", "value", "valueTwo", "op"))
    if index is None or index > 5:
        out.fail(f"{at}.index", "required: 0 to 5")
        return None
    if value is None:
        out.fail(f"{at}.value", "required")
        return None
    if op not in OPERATORS:
        out.fail(f"{at}.op", f"{op!r}: expected one of {', '.join(OPERATORS)}")
        return None
    if op == "SCMP_CMP_MASKED_EQ":
        # The spec's value is the mask and valueTwo the datum (libseccomp's order); LXC writes datum, then mask.
        return index, f"[{index},{second},{op},{value}]"
    return index, f"[{index},{value},{op}]"
