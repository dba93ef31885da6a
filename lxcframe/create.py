"""``create``: a template fills the rootfs, the config is written, plugins see the result.

A failure at any point removes the container directory it made, so nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from lxcframe.config.model import load_config
from lxcframe.config.writer import format_line
from lxcframe.context import CreateContext
from lxcframe.errors import ContainerError, LxcframeError
from lxcframe.stage_runner import call_hook
from lxcframe.templates import Template, TemplateRequest, TemplateResult


def available_templates(plugins: Any) -> dict[str, Template]:
    templates: dict[str, Template] = {}
    for offered in plugins.hook.lxcframe_templates():
        for template in offered:
            if template.name in templates:
                raise LxcframeError(f"template {template.name!r} is offered by two plugins")
            templates[template.name] = template
    return templates


def host_defaults() -> list[tuple[str, str]]:
    """The host's ``default_config`` lines, which every new container gets (like LXC's default.conf)."""
    from lxcframe.config.parser import read_entries
    from lxcframe.hostconfig import load_host_config

    path = load_host_config().default_config
    if not path:
        return []
    return [(entry.key, entry.value) for entry in read_entries(path)]


def _build_as_container_root(template: Template, request: TemplateRequest,
                             given: list[tuple[str, str]]) -> tuple[TemplateResult, list[tuple[str, str]]]:
    """A non-root caller's template runs as the container's root in a user namespace (LXC runs its
    templates through ``lxc-usernsexec``), so the rootfs belongs to the ids the container maps; the
    idmap is the one the config is given, else the caller's first subuid and subgid ranges, which
    are then added to the config."""
    from lxcframe import idmap, subid, userns_exec

    values = [value for key, value in given if key == "lxc.idmap"]
    entries = idmap.expand(idmap.parse_idmap(value) for value in values) if values else subid.default_idmap()
    added = [] if values else [("lxc.idmap", f"{e.kind} {e.line()}") for e in entries]
    return userns_exec.run_as_root(entries, template.build, request), added


def create_container(container: Any, template_name: str, args: tuple[str, ...], source: str | None,
                     extra: tuple[tuple[str, str], ...]) -> None:
    templates = available_templates(container.plugins)
    template = templates.get(template_name)
    if template is None:
        known = ", ".join(sorted(templates)) or "none"
        raise ContainerError(f"unknown template {template_name!r} (available: {known})")
    if container.defined or os.path.exists(container.container_dir):
        raise ContainerError(f"{container.name}: already exists")
    os.makedirs(container.lxcpath, mode=0o755, exist_ok=True)
    os.mkdir(container.container_dir, 0o770)
    try:
        request = TemplateRequest(container.name, container.lxcpath,
                                  os.path.join(container.container_dir, "rootfs"), source, args)
        given = [*host_defaults(), *extra]
        try:
            if os.geteuid() == 0:
                result = template.build(request)
                added: list[tuple[str, str]] = []
            else:
                result, added = _build_as_container_root(template, request, given)
        except (OSError, ValueError, RuntimeError) as err:
            raise ContainerError(f"template {template_name!r} failed: {err}") from None
        lines = [f"# Container {container.name}, created by lxcframe from the {template_name} template"]
        lines += [format_line(key, value, path=container.config_file_name)
                  for key, value in (*result.config, *added, *given)]
        with open(container.config_file_name, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        # Refuse a config that would not load, while the user still has the create command in hand.
        load_config(container.config_file_name, container.plugins.key_registry())
        call_hook(container.plugins, "lxcframe_post_create", ctx=CreateContext(
            container.name, container.lxcpath, template_name, result.rootfs, container.config_file_name))
    except BaseException:
        shutil.rmtree(container.container_dir, ignore_errors=True)
        raise
