"""What a differential script records: each call's result as its repr (type and value), or the
exception class it raised. Run by python3 with python3-lxc and by lxcframe's venv with the compat
module; the two records are compared."""

import json
import sys


def load_lxc(mode):
    if mode == "lxc":
        import lxc
    else:
        import lxcframe.compat.lxc as lxc
    return lxc


def shown(value):
    """The repr, but an object's by its class name alone (its module and address differ by side)."""
    text = repr(value)
    return f"<{type(value).__name__} object>" if " object at 0x" in text else text


class Recorder:
    def __init__(self):
        self.entries = []

    def call(self, label, function, *args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except Exception as err:  # the class is what callers catch
            self.entries.append([label, "raises " + type(err).__name__])
            return err
        self.entries.append([label, shown(result)])
        return result

    def value(self, label, value):
        self.entries.append([label, shown(value)])

    def dump(self):
        json.dump(self.entries, sys.stdout)
        sys.stdout.write("\n")
