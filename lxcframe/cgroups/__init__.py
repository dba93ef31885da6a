"""cgroup driver logic shared by the ``cgroup1`` and ``cgroup2`` plugins.

Nothing here runs at import: the host's layout is detected when first asked for and cached per mount
table (:mod:`.layout`). The other modules each do one thing: the keys both plugins read
(:mod:`.settings`), cgroup names and base cgroups (:mod:`.naming`), creating and removing the
container's cgroups (:mod:`.placement`), limits (:mod:`.limits`), delegation (:mod:`.delegate`),
operations on a running container (:mod:`.runtime`), the start itself (:mod:`.start`) and the
mounts inside the container (:mod:`.automount`).
"""
