"""Container names (lxcframe.names): what is accepted, and the reason given for what is not."""

from __future__ import annotations

import pytest

from lxcframe.names import MAX_NAME_BYTES, RULE, why_invalid


@pytest.mark.parametrize(
    "name",
    ["a", "Z", "0", "9", "web01", "web-01", "web_01", "web.01", "a-", "a.", "a_", "A.b-C_9", "x" * 64],
)
def test_valid_names(name: str) -> None:
    assert why_invalid(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("x" * 65, "longer than 64 bytes"),
        ("-a", "starts with '-'"),
        (".hidden", "starts with '.'"),
        ("_a", "starts with '_'"),
        ("..", "starts with '.'"),
        ("/etc", "starts with '/'"),
        (" a", "starts with ' '"),
        ("é", "starts with 'é'"),
        ("a b", "contains ' '"),
        ("a/b", "contains '/'"),
        ("a\nb", "contains '\\n'"),
        ("ab\0", "contains '\\x00'"),
        ("caf\u00e9", "contains 'é'"),
        ("a:b", "contains ':'"),
        ("a=b", "contains '='"),
        # The first offending character is named, not a later one.
        ("a b/c", "contains ' '"),
    ],
)
def test_invalid_names_say_why(name: str, reason: str) -> None:
    assert why_invalid(name) == reason


def test_length_is_checked_before_characters() -> None:
    assert why_invalid("-" * 65) == "longer than 64 bytes"
    assert why_invalid("a" * 64 + " ") == "longer than 64 bytes"


def test_rule_text_states_the_limit() -> None:
    assert MAX_NAME_BYTES == 64
    assert RULE == "1 to 64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"
