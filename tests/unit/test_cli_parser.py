"""The parser a command builds for its own verb parses it as the whole parser does."""

from __future__ import annotations

import pytest

from lxcframe.cli.parser import VERBS, build_parser
from lxcframe.cli.words import VERB_NAMES, verb_of

LINES = [
    (["start", "c1"], "start"),
    (["-P", "/srv/lxc", "start", "-F", "c1", "/bin/sh"], "start"),
    (["-P", "start", "stop", "c1", "-k"], "stop"),  # a path named like a verb is the option's value
    (["-p", "no:caps", "--format", "json", "info", "c1"], "info"),
    (["--format=json", "ls", "--fancy"], "ls"),
    (["config", "set", "c1", "lxc.uts.name", "x"], "config"),
    (["execute", "-n", "c2", "-f", "/etc/rc", "true"], "execute"),
    (["attach", "-v", "A=1", "--pass-fd", "5", "c1", "id"], "attach"),
    (["--log-level", "debug", "--host-config", "/etc/x.toml", "mount", "c1", "/src", "/dst", "-o", "ro"], "mount"),
]


@pytest.mark.parametrize(("args", "verb"), LINES)
def test_the_verbs_own_parser_gives_what_the_whole_parser_gives(args, verb):
    assert verb_of(args) == verb
    assert vars(build_parser(only=verb).parse_args(args)) == vars(build_parser().parse_args(args))


@pytest.mark.parametrize(("args", "expected"), [
    ([], None),
    (["--help"], None),
    (["nosuchverb", "c1"], None),
    (["-P", "/x"], None),
    (["-P", "/x", "wait", "c1", "RUNNING"], "wait"),
])
def test_verb_of(args, expected):
    assert verb_of(args) == expected


def test_every_verb_is_listed_when_only_one_is_built(capsys):
    with pytest.raises(SystemExit):
        build_parser(only="start").parse_args(["--help"])
    listed = capsys.readouterr().out
    for name, _, _ in VERBS:
        assert name in listed


def test_the_words_module_names_every_verb_of_the_parser_in_its_order():
    assert tuple(name for name, _, _ in VERBS) == VERB_NAMES


def test_the_warm_parser_parses_each_line_as_a_fresh_one_however_often_it_is_used(monkeypatch):
    from lxcframe.cli import parser

    monkeypatch.setattr(parser, "_WARM", [])
    parser.keep_warm()
    warm = parser.parser_for("start")
    assert parser.parser_for("ls") is warm
    # Each worker of the server parses with its own (forked) copy; within one, a parse must still leave
    # nothing behind for the next.
    for _ in range(2):
        for args, verb in LINES:
            assert vars(warm.parse_args(args)) == vars(build_parser(only=verb).parse_args(args))
