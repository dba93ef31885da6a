"""attach_wait and attach as integrators call them: attach_run_command payloads, Python callables,
raw wait statuses, stdio redirection, environment policy, ids, working directory, namespaces."""

import os
import socket
import sys

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
lxc = load_lxc(mode)
rec = Recorder()
c = busybox(lxc, rec, name, lxcpath)
run = lxc.attach_run_command

rec.call("attach_wait stopped", c.attach_wait, run, ["true"])
rec.call("attach stopped", c.attach, run, ["true"])
rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)


def output(*args, **options):
    """What the attached process wrote to its stdout, and its status."""
    read, write = os.pipe()
    status = c.attach_wait(*args, stdout=write, **options)
    os.close(write)
    with os.fdopen(read) as pipe:
        return status, pipe.read()


for label, payload in (("true", ["true"]), ("false", ["false"]), ("exit 7", ["sh", "-c", "exit 7"]),
                       ("exit 255", ["sh", "-c", "exit 255"]), ("missing program", ["/nonexistent"]),
                       ("not executable", ["/etc/passwd"]), ("killed", ["sh", "-c", "kill -9 $$"]),
                       ("str payload", "true"), ("tuple payload", ("true", ["true"])),
                       ("tuple with a tuple argv", ("true", ("true",)))):
    rec.call(f"attach_run_command {label}", c.attach_wait, run, payload)

rec.call("callable without payload", c.attach_wait, lambda: 3)
rec.call("callable with payload", c.attach_wait, lambda value: value, 5)
rec.call("callable with None payload", c.attach_wait, lambda value: 0 if value is None else 1, None)
rec.call("callable returning a str", c.attach_wait, lambda: "x")
rec.call("callable raising", c.attach_wait, lambda: 1 // 0)


def write_marker(text):
    with open("/root/marker", "w") as handle:
        handle.write(text)
    return 0


rec.call("callable writing inside", c.attach_wait, write_marker, "inside")
rec.call("cat what it wrote", output, run, ["cat", "/root/marker"])
rec.call("callable running a command", c.attach_wait, lambda: run(["sh", "-c", "exit 4"]))
rec.call("uts namespace only", c.attach_wait, lambda: 0 if socket.gethostname() == name else 1,
         namespaces=lxc.CLONE_NEWUTS)
rec.call("extra env, keep policy", output, run, ["sh", "-c", "echo $FOO $container"], extra_env_vars=["FOO=bar"])
rec.call("clear env", output, run, ["sh", "-c", "echo $PATH $container $FOO $HOSTVAR"],
         env_policy=lxc.LXC_ATTACH_CLEAR_ENV, extra_env_vars=["FOO=baz"])
os.environ["HOSTVAR"] = "kept"
rec.call("clear env keeping one", output, run, ["sh", "-c", "echo $HOSTVAR"],
         env_policy=lxc.LXC_ATTACH_CLEAR_ENV, extra_keep_env=["HOSTVAR"])
rec.call("uid and gid", output, run, ["sh", "-c", "id -u; id -g"], uid=1000, gid=1001)
rec.call("initial_cwd", output, run, ["pwd"], initial_cwd="/etc")
rec.call("personality", output, run, ["uname", "-m"], personality=lxc.arch_to_personality("i686"))
rec.call("env as a tuple", output, run, ["sh", "-c", "echo $A$B"], extra_env_vars=("A=1", "B=2"))
rec.call("default cwd (the caller's is not inside)", output, run, ["pwd"])

read, write = os.pipe()
os.write(write, b"exit 6\n")
os.close(write)
rec.call("attach_run_shell reading stdin", c.attach_wait, lxc.attach_run_shell, stdin=read)
os.close(read)

with open(os.devnull, "w") as sink:
    rec.call("stdout as a file object", c.attach_wait, run, ["echo", "hidden"], stdout=sink)
rec.call("not callable", c.attach_wait, "true")
rec.call("unknown keyword", c.attach_wait, run, ["true"], bogus=1)

pid = c.attach(run, ["sh", "-c", "exit 3"])
rec.value("attach gives a child's pid", pid > 1 and pid != c.init_pid)
rec.value("its raw status", os.waitpid(pid, 0)[1])

rec.call("stop", c.stop)
rec.call("destroy", c.destroy)
rec.dump()
