"""The start pipeline's stages, in order: the one place that owns it.

Each stage names the hook it fires and the side of the fork it runs on. The golden test pins this order
and checks that a real start fires the hooks in it.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Stage:
    name: str
    hook: str
    side: str  # "host" (caller or monitor) or "child" (container init before exec)


START_STAGES: tuple[Stage, ...] = (
    Stage("validate", "lxcframe_validate", "host"),
    Stage("pre-start", "lxcframe_pre_start", "host"),
    Stage("userns", "lxcframe_child_created", "host"),
    Stage("cgroup", "lxcframe_attach_cgroup", "host"),
    Stage("network", "lxcframe_setup_network", "host"),
    Stage("child-network", "lxcframe_child_network", "child"),
    Stage("pre-mount", "lxcframe_child_pre_mount", "child"),
    Stage("rootfs", "lxcframe_child_mount_rootfs", "child"),
    Stage("mounts", "lxcframe_child_mount_filesystems", "child"),
    Stage("devices", "lxcframe_child_devices", "child"),
    Stage("pre-pivot", "lxcframe_child_pre_pivot", "child"),
    Stage("start-host", "lxcframe_start_host", "host"),
    Stage("security", "lxcframe_child_security", "child"),
    Stage("exec", "lxcframe_child_pre_exec", "child"),
    Stage("post-start", "lxcframe_post_start", "host"),
    Stage("stop", "lxcframe_stopped", "host"),
    Stage("post-stop", "lxcframe_post_stop", "host"),
)

STAGE_BY_HOOK = {stage.hook: stage for stage in START_STAGES}
#: Stages of a container that has started: a failure there is no failed start.
AFTER_START = frozenset({"post-start", "stop", "post-stop"})
