"""rtnetlink on a raw ``AF_NETLINK`` socket: headers, attributes, requests, dumps, and errors.

Only the standard library: this module is on the path of ``get_ips`` and of every container start
with a network, where importing a netlink library would cost more than all the requests together.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterable
from typing import NamedTuple

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_EXT_ACK = 11
#: Named NETLINK_DUMP_STRICT_CHK when Linux 4.20 added it; the kernel checks dump requests' headers and
#: attributes, and only then honours filters such as IFA_TARGET_NETNSID.
NETLINK_GET_STRICT_CHK = 12

NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
# Flags of an acknowledgement.
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NLA_F_NESTED = 0x8000
_NLA_TYPE_MASK = 0x3FFF
NLMSGERR_ATTR_MSG = 1

HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_ATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")

_RECV_SIZE = 1 << 16


class Message(NamedTuple):
    kind: int
    flags: int
    body: bytes


class NetlinkError(OSError):
    """The kernel refused a request; ``strerror`` carries its extended-ack reason when it gave one."""

    def __init__(self, code: int, what: str, reason: str = "") -> None:
        text = os.strerror(code) + (f" ({reason})" if reason else "")
        super().__init__(code, f"{what}: {text}" if what else text)
        self.reason = reason


# --- attributes ------------------------------------------------------------------------------------


def _align(length: int) -> int:
    return (length + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def attr_s32(kind: int, value: int) -> bytes:
    return attr(kind, _S32.pack(value))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def attr_nested(kind: int, parts: Iterable[bytes]) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes from ``offset`` on, by type (a repeated type keeps its last value)."""
    found: dict[int, bytes] = {}
    end = len(data)
    while offset + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size or offset + length > end:
            break
        found[kind & _NLA_TYPE_MASK] = data[offset + _ATTR.size : offset + length]
        offset += _align(length)
    return found


def u32(payload: bytes) -> int:
    value: int = _U32.unpack_from(payload)[0]
    return value


def s32(payload: bytes) -> int:
    value: int = _S32.unpack_from(payload)[0]
    return value


def text(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


# --- the socket ------------------------------------------------------------------------------------


def _raw_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    except OSError:
        pass  # before Linux 4.12: errors come without the kernel's reason
    return sock


def _socket_inside(ns_fd: int) -> socket.socket:
    """A netlink socket that belongs to the network namespace ``ns_fd`` refers to.

    A socket stays in the namespace it was created in, so a short-lived thread joins that namespace,
    creates it and ends. setns(CLONE_NEWNET) only changes the calling thread, which is allowed in a
    multi-threaded process: the caller's own threads never leave their namespace.
    """
    from lxcframe import syscalls

    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            syscalls.setns(ns_fd, syscalls.CLONE_NEWNET)
            made.append(_raw_socket())
        except BaseException as err:  # handed to the caller's thread
            failed.append(err)

    worker = threading.Thread(target=work, name="lxcframe-netns-socket", daemon=True)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


class RtnlSocket:
    """One NETLINK_ROUTE socket: requests answered by an ack, and dumps.

    ``strict`` sets NETLINK_GET_STRICT_CHK (an :class:`OSError` if the kernel lacks it). ``ns_fd``
    opens the socket inside that network namespace instead of the caller's.
    """

    def __init__(self, *, strict: bool = False, ns_fd: int | None = None) -> None:
        self._sock = _raw_socket() if ns_fd is None else _socket_inside(ns_fd)
        try:
            if strict:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            # No bind(): the kernel binds a netlink socket to a free port id at its first send.
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RtnlSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self._seq += 1
        self._sock.send(HEADER.pack(HEADER.size + len(body), kind, flags, self._seq, 0) + body)
        return self._seq

    def _messages(self, seq: int) -> Iterable[Message]:
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, kind, flags, msg_seq, _port = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    break
                if msg_seq == seq:
                    yield Message(kind, flags, data[offset + HEADER.size : offset + length])
                offset += _align(length)

    def subscribe(self, group: int) -> None:
        """Receive the kernel's notifications of multicast ``group`` (an RTNLGRP_* number)."""
        self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def notifications(self, timeout: float) -> list[Message]:
        """The notifications of one receive, or none if nothing came within ``timeout`` seconds."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(_RECV_SIZE)
        except TimeoutError:
            return []
        finally:
            self._sock.settimeout(None)
        found = []
        offset = 0
        while offset + HEADER.size <= len(data):
            length, kind, flags, _seq, _port = HEADER.unpack_from(data, offset)
            if length < HEADER.size:
                break
            found.append(Message(kind, flags, data[offset + HEADER.size : offset + length]))
            offset += _align(length)
        return found

    def request(self, kind: int, body: bytes, *, flags: int = 0, what: str = "") -> list[Message]:
        """Send a request and wait for its ack; returns what the kernel answered before the ack."""
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_ACK | flags, body)
        replies: list[Message] = []
        for message in self._messages(seq):
            if message.kind == NLMSG_ERROR:
                code = -s32(message.body)
                if code:
                    raise NetlinkError(code, what, _ack_reason(message))
                return replies
            replies.append(message)
        return replies  # not reached: _messages only ends by raising

    def dump(self, kind: int, body: bytes, *, what: str = "") -> list[Message]:
        """Send a dump request and collect every message until NLMSG_DONE."""
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_DUMP, body)
        replies: list[Message] = []
        for message in self._messages(seq):
            if message.kind == NLMSG_DONE:
                # A dump that failed after it started reports the error here (with its reason).
                code = -s32(message.body) if len(message.body) >= 4 else 0
                if code > 0:
                    reason = ""
                    if message.flags & NLM_F_ACK_TLVS:
                        reason = text(parse_attrs(message.body, 4).get(NLMSGERR_ATTR_MSG, b""))
                    raise NetlinkError(code, what, reason)
                return replies
            if message.kind == NLMSG_ERROR:
                code = -s32(message.body)
                raise NetlinkError(code or 5, what, _ack_reason(message))
            replies.append(message)
        return replies  # not reached


def _ack_reason(message: Message) -> str:
    """The extended-ack text of an NLMSG_ERROR, if the kernel put one there."""
    if not message.flags & NLM_F_ACK_TLVS or len(message.body) < 4 + HEADER.size:
        return ""
    offset = 4 + HEADER.size
    if not message.flags & NLM_F_CAPPED:
        offset = 4 + _align(HEADER.unpack_from(message.body, 4)[0])
    return text(parse_attrs(message.body, offset).get(NLMSGERR_ATTR_MSG, b""))
