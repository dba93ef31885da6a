"""What each verb does: parse nothing, print results; the library does the work."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from lxcframe.cli.table import fit
from lxcframe.errors import ConfigError, LxcframeError, PluginError


def _setup(options: Any, *, plugins: bool = True) -> tuple[Any, Any]:
    """Logging, host config and (unless the command needs none) plugins for this command."""
    from lxcframe.hostconfig import HOST_CONFIG_ENV, load_host_config
    from lxcframe.log import HUB
    from lxcframe.plugin_manager import for_command

    level = options.log_level or ("debug" if options.debug else None)
    try:
        if options.trace_plugins:
            from lxcframe.log import LEVELS, parse_level

            # The plugins below trace; every monitor this command starts does too, since the start
            # request carries the flag (start_request.PluginSelection).
            if level is None or parse_level(level) > LEVELS["info"]:
                level = "info"  # the trace lines' level: asked for, they are shown
        HUB.configure(level=level, path=options.log_file, fmt=options.log_format)
    except ValueError as err:  # a level that is no level: one line, as every other error
        raise LxcframeError(f"--log-level {level}: {err}") from None
    if options.host_config:
        # Everything below (plugins, create's default config, monitors) reads the same file.
        os.environ[HOST_CONFIG_ENV] = options.host_config
    host = load_host_config()
    disabled = []
    for item in options.plugin_opts:
        if not item.startswith("no:") or not item[3:]:
            raise PluginError(f"-p {item}: expected -p no:NAME")
        disabled.append(item[3:])
    if options.lxcpath is None:
        options.lxcpath = host.lxcpath
    trace = True if options.trace_plugins else None  # without the option: LXCFRAME_TRACE_PLUGINS decides
    loaded = for_command(disabled, host=host, disable_origin="-p no:{name}", trace=trace) if plugins else None
    collect_from_here()
    return host, loaded


def collect_from_here() -> None:
    """What is loaded so far lives as long as the command: out of the collector's way (``gc.freeze``,
    which also spares a forked monitor's shared pages), and the collector on for the command's work."""
    import gc

    gc.freeze()
    gc.enable()


def _container(options: Any, plugins: Any, name: str | None = None, config_path: str | None = None) -> Any:
    from lxcframe.container import Container

    return Container(name or options.name, options.lxcpath, plugins=plugins, config_path=config_path)


def _emit(options: Any, rows: Any, text: str) -> None:
    if options.format == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(text)


def dispatch(options: Any) -> int:
    handler = _HANDLERS[options.command]
    return handler(options)


def cmd_plugins(options: Any) -> int:
    _, plugins = _setup(options)
    records = plugins.records()
    rows = [[r.name, r.distribution, r.version, r.state + (f" ({r.reason})" if r.reason else ""),
             ", ".join(r.extensions) or "-", ", ".join(h.removeprefix("lxcframe_") for h in r.hooks) or "-"]
            for r in records]
    data = [{"name": r.name, "distribution": r.distribution, "version": r.version, "state": r.state,
             "reason": r.reason, "extensions": list(r.extensions), "hooks": list(r.hooks), "builtin": r.builtin}
            for r in records]
    _emit(options, data, fit(["NAME", "DISTRIBUTION", "VERSION", "STATE", "EXTENSIONS", "HOOKS"], rows, options,
                             keep=(0, 2)))
    return 0


def cmd_extensions(options: Any) -> int:
    _, plugins = _setup(options)
    names = sorted(plugins.api_extensions())
    _emit(options, names, "\n".join(names))
    return 0


def cmd_check(options: Any) -> int:
    from lxcframe.cli import check

    _, plugins = _setup(options)
    return check.run(options, plugins)


def cmd_config(options: Any) -> int:
    _, plugins = _setup(options)
    if options.config_command == "validate":
        from lxcframe.config.model import load_config
        from lxcframe.errors import ConfigErrors
        from lxcframe.planner import refuse_unapplied_keys

        try:
            config = load_config(options.file, plugins.key_registry())
        except ConfigErrors as errs:
            for err in errs.errors:
                print(f"lxcframe: error: {err}", file=sys.stderr)
            return 1
        from lxcframe.stage_runner import call_hook

        problems = [p for result in call_hook(plugins, "lxcframe_validate", config=config, manager=plugins)
                    for p in result]
        if problems:
            for problem in problems:
                print(f"lxcframe: error: {problem}", file=sys.stderr)
            return 1
        try:
            # The same refusal a start gives: "valid" must mean the container would start as written.
            refuse_unapplied_keys(plugins, config)
        except ConfigErrors as errs:
            for err in errs.errors:
                print(f"lxcframe: error: {err}", file=sys.stderr)
            return 1
        notes = [u.describe() for u in config.unhandled]
        data = {"file": options.file, "valid": True, "keys": len(list(config.keys())), "unhandled": notes}
        _emit(options, data, "\n".join([f"{options.file}: valid ({data['keys']} keys)", *notes]))
        return 0
    if options.config_command == "keys":
        from lxcframe.cli import config_keys

        rows = config_keys.key_rows(plugins, options.plugin)
        _emit(options, config_keys.as_json(rows), config_keys.as_text(rows))
        return 0
    container = _container(options, plugins)
    if options.config_command == "get":
        value = container.get_config_item(options.key)
        if value is None:
            registry = plugins.key_registry()
            if registry.lookup(options.key) is None:
                raise ConfigError(registry.why_not_handled(options.key), key=options.key)
            return 0
        print(value)
        return 0
    container.set_config_item(options.key, options.value)
    return 0


def _read_config_lines(path: str) -> list[tuple[str, str]]:
    from lxcframe.config.parser import read_entries

    return [(entry.key, entry.value) for entry in read_entries(path)]


def cmd_create(options: Any) -> int:
    _, plugins = _setup(options)
    extra = _read_config_lines(options.config) if options.config else []
    _container(options, plugins).create(options.template, options.template_args, rootfs=options.rootfs,
                                        config=extra)
    return 0


def cmd_start(options: Any) -> int:
    _, plugins = _setup(options)
    container = _container(options, plugins)
    if options.foreground:
        return int(container.start(options.cmd or None, foreground=True))
    container.start(options.cmd or None)
    return 0


def cmd_stop(options: Any) -> int:
    _, plugins = _setup(options)
    _container(options, plugins).stop(kill=options.kill, timeout=options.timeout)
    return 0


def cmd_reboot(options: Any) -> int:
    """As ``lxc-stop -r``: 0 once the container runs again (or at once with ``-t 0``), 1 if it did not in time."""
    _, plugins = _setup(options)
    container = _container(options, plugins)
    if options.timeout == 0:
        container.reboot()
        return 0
    if container.reboot2(options.timeout):
        return 0
    print(f"lxcframe: error: {options.name} did not run again within {options.timeout:g} s", file=sys.stderr)
    return 1


def cmd_execute(options: Any) -> int:
    _, plugins = _setup(options)
    if options.rcfile:
        if options.name:
            # With -f the container is named by -n; argparse gave the command's first word to NAME.
            options.cmd = [options.name, *options.cmd]
        name = options.name_opt or os.path.splitext(os.path.basename(options.rcfile))[0]
        container = _container(options, plugins, name, os.path.abspath(options.rcfile))
    else:
        if not options.name:
            raise LxcframeError("execute needs a container NAME or -f CONFIG")
        container = _container(options, plugins)
    return int(container.execute(options.cmd or None))


def cmd_attach(options: Any) -> int:
    if not options.cmd:
        raise LxcframeError("attach needs a command: lxcframe attach NAME -- CMD...")
    _, plugins = _setup(options)
    return int(_container(options, plugins).attach_wait(
        options.cmd, clear_env=options.clear_env, uid=options.uid, gid=options.gid, env=options.set_var,
        pass_fds=options.pass_fd))


def cmd_destroy(options: Any) -> int:
    _, plugins = _setup(options)
    _container(options, plugins).destroy(force=options.force)
    return 0


def cmd_info(options: Any) -> int:
    _, plugins = _setup(options)
    container = _container(options, plugins)
    if not container.defined:
        raise LxcframeError(f"{options.name}: no such container")
    data = container.info()
    def shown(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value) or "-"
        return str(value)

    def line(label: str, value: Any) -> str:
        return f"{label + ':':<14}{value}"

    # Block IO and the links' byte counts read as lxc-info prints them: sizes humanized, one block per link.
    lines = [line(key.replace("_", " ").title(), shown(value)) for key, value in data.items()
             if key not in ("blkio_bytes", "links")]
    if "blkio_bytes" in data:
        lines.append(line("BlkIO use", humanized(data["blkio_bytes"])))
    for link in data.get("links", ()):
        lines += [line("Link", link["name"]), line(" TX bytes", humanized(link["tx_bytes"])),
                  line(" RX bytes", humanized(link["rx_bytes"])),
                  line(" Total bytes", humanized(link["tx_bytes"] + link["rx_bytes"]))]
    _emit(options, data, "\n".join(lines))
    return 0


def humanized(size: int) -> str:
    """A byte count as lxc-info shows it: bytes up to 1 KiB, then KiB, MiB, GiB with two decimals."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size > 1 << shift:
            return f"{size / (1 << shift):.2f} {unit}"
    return f"{size} bytes"


def cmd_ls(options: Any) -> int:
    from lxcframe.container import list_containers

    plain = not options.fancy and options.format == "text"
    # Names alone need no plugin: loading them is most of what a command costs.
    _, plugins = _setup(options, plugins=not plain)
    names = list_containers(options.lxcpath)
    if plain:
        print("\n".join(names))
        return 0
    data = []
    for name in names:
        info = _container(options, plugins, name).info()
        # JSON says "none" as JSON does (null, []); "-" is for the table alone.
        data.append({"name": name, "state": info["state"], "pid": info.get("pid") or None,
                     "ipv4": list(info.get("ipv4", [])), "ipv6": list(info.get("ipv6", []))})
    rows = [[d["name"], d["state"], str(d["pid"] or "-"), ",".join(d["ipv4"]) or "-", ",".join(d["ipv6"]) or "-"]
            for d in data]
    _emit(options, data, fit(["NAME", "STATE", "PID", "IPV4", "IPV6"], rows, options, keep=(0, 1, 2)))
    return 0


def cmd_wait(options: Any) -> int:
    _, plugins = _setup(options)
    return 0 if _container(options, plugins).wait(options.state, options.timeout) else 1


def cmd_monitor(options: Any) -> int:
    from lxcframe.cli import watch

    _, plugins = _setup(options)
    return watch.run(options, plugins)


def cmd_freeze(options: Any) -> int:
    _, plugins = _setup(options)
    _container(options, plugins).freeze()
    return 0


def cmd_unfreeze(options: Any) -> int:
    _, plugins = _setup(options)
    _container(options, plugins).unfreeze()
    return 0


def cmd_cgroup(options: Any) -> int:
    _, plugins = _setup(options)
    container = _container(options, plugins)
    if options.value is None:
        print(container.get_cgroup_item(options.key))
    else:
        container.set_cgroup_item(options.key, options.value)
    return 0


def cmd_mount(options: Any) -> int:
    from lxcframe.mount_options import parse_options

    _, plugins = _setup(options)
    try:
        parsed = parse_options([o for o in options.options.split(",") if o])
    except ValueError as err:
        raise LxcframeError(f"-o {options.options}: {err}") from None
    _container(options, plugins).mount(options.source, options.target, options.fstype, parsed.flags, parsed.data)
    return 0


def cmd_umount(options: Any) -> int:
    from lxcframe import syscalls

    _, plugins = _setup(options)
    _container(options, plugins).umount(options.target, syscalls.MNT_DETACH if options.lazy else 0)
    return 0


def cmd_console(options: Any) -> int:
    _, plugins = _setup(options)
    return int(_container(options, plugins).console(options.ttynum, options.escape))


def cmd_autostart(options: Any) -> int:
    """As ``lxc-autostart``: with ``-L`` each container it would act on, one line each as it is reached
    (NAME and its ``lxc.start.delay`` for a start or reboot, NAME alone for a shutdown or kill); the
    exit status 0, 1 when every container of the lxcpath failed, 2 when some did."""
    from lxcframe import autostart

    _, plugins = _setup(options)
    with_delay = options.action in (autostart.START, autostart.REBOOT)

    def report(entry: autostart.Entry) -> None:
        if options.list:
            print(f"{entry.name} {entry.delay}" if with_delay else entry.name, flush=True)

    outcome = autostart.autostart(
        options.lxcpath, options.action, groups=autostart.parse_groups(options.groups),
        all_groups=options.all_groups, ignore_auto=options.ignore_auto, timeout=options.timeout,
        list_only=options.list, plugins=plugins, report=report)
    for failure in outcome.failed:
        print(f"lxcframe: error: {failure.name}: {failure.reason}", file=sys.stderr)
    return outcome.exit_status


def cmd_copy(options: Any) -> int:
    """As ``lxc-copy``: a copy, a rename, or (``-e``) an ephemeral overlay snapshot started at once, in the
    foreground unless ``-d``; with a command, it runs attached (environment cleared) and the copy is
    stopped afterwards, and the exit status is the command's."""
    _, plugins = _setup(options)
    source = _container(options, plugins)
    if not options.ephemeral:
        if options.keepdata or options.daemon or options.cmd:
            raise LxcframeError("copy: -D, -d and a command go with -e")
        if not options.newname:
            raise LxcframeError("copy needs -N NEWNAME (or -e)")
        if options.rename:
            source.rename(options.newname)
        else:
            source.clone(options.newname, lxcpath=options.newpath, snapshot=options.snapshot,
                         keep_name=options.keepname, keep_mac=options.keepmac)
        return 0
    if options.rename:
        raise LxcframeError("copy: -R does not go with -e")
    copy = source.ephemeral_copy(options.newname, lxcpath=options.newpath, keep_data=options.keepdata,
                                 keep_name=options.keepname, keep_mac=options.keepmac)
    print(f"Created {copy.name} as clone of {source.name}", flush=True)
    try:
        if options.cmd or options.daemon:
            copy.start()
        else:
            return int(copy.start(foreground=True))
    except BaseException:
        if not options.keepdata and copy.defined and not copy.running:
            copy.destroy()  # it never ran, so its end did not remove it
        raise
    if not options.cmd:
        return 0
    try:
        return int(copy.attach_wait(options.cmd, clear_env=True))
    finally:
        copy.stop()


def cmd_snapshot(options: Any) -> int:
    """As ``lxc-snapshot``: take one (the default), ``-L`` list, ``-r`` restore, ``-d`` destroy."""
    _, plugins = _setup(options)
    container = _container(options, plugins)
    if options.showcomments and not options.list:
        raise LxcframeError("snapshot: -C goes with -L")
    if options.newname and not options.restore:
        raise LxcframeError("snapshot: -N goes with -r")
    if options.comment and (options.list or options.restore or options.destroy):
        raise LxcframeError("snapshot: -c goes with taking a snapshot")
    if options.list:
        snapshots = container.snapshot_list()
        if options.format == "json":
            print(json.dumps([{"name": s.name, "lxcpath": s.lxcpath, "timestamp": s.timestamp,
                               "comment": _comment(s.comment_path)} for s in snapshots], indent=2))
            return 0
        if not snapshots:
            print("No snapshots")
        for snap in snapshots:
            print(f"{snap.name} ({snap.lxcpath}) {snap.timestamp}")
            if options.showcomments and snap.comment_path is not None:
                print(_comment(snap.comment_path), end="")
        return 0
    if options.restore:
        container.snapshot_restore(options.restore, options.newname)
    elif options.destroy == "ALL":
        for snap in container.snapshot_list():
            container.snapshot_destroy(snap.name)
    elif options.destroy:
        container.snapshot_destroy(options.destroy)
    else:
        print(container.snapshot(options.comment))
    return 0


def _comment(path: str | None) -> str | None:
    if path is None:
        return None
    with open(path, errors="replace") as handle:
        return handle.read()


def cmd_device(options: Any) -> int:
    """As ``lxc-device``: a device node is bound in (with its device cgroup rule) or taken out; a network
    interface is moved in from the host (``add``) or back out to it (``del``)."""
    import socket

    _, plugins = _setup(options)
    container = _container(options, plugins)
    if options.action == "add":
        try:
            socket.if_nametoindex(options.device)
        except OSError:
            container.add_device_node(options.device, options.target)
        else:
            container.attach_interface(options.device, options.target)
    elif options.device in container.get_interfaces():
        container.detach_interface(options.device, options.target)
    else:
        container.remove_device_node(options.device, options.target)
    return 0


_HANDLERS = {
    "plugins": cmd_plugins, "extensions": cmd_extensions, "check": cmd_check, "config": cmd_config,
    "create": cmd_create, "start": cmd_start, "stop": cmd_stop, "execute": cmd_execute,
    "attach": cmd_attach, "destroy": cmd_destroy, "info": cmd_info, "ls": cmd_ls, "wait": cmd_wait,
    "freeze": cmd_freeze, "unfreeze": cmd_unfreeze, "mount": cmd_mount, "umount": cmd_umount,
    "console": cmd_console, "cgroup": cmd_cgroup, "reboot": cmd_reboot, "autostart": cmd_autostart,
    "copy": cmd_copy, "monitor": cmd_monitor, "snapshot": cmd_snapshot, "device": cmd_device,
}
