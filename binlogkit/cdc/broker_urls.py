"""Broker URLs of the CLI: ``nats://HOST:PORT[,HOST:PORT...]/STREAM`` (a
JetStream stream; several servers of one cluster) and
``redis://[USER:PASSWORD@]HOST:PORT/PREFIX[?db=N]`` (the prefix of the
stream keys; Redis database N, default 0)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

BrokerKind = Literal["nats", "redis"]
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class BrokerURLError(ValueError):
    """A broker URL that cannot be used (one line, password masked)."""


def mask_servers(url: str) -> str:
    """``url`` (one server URL or a comma-separated list) with passwords and
    tokens replaced by ``***``."""
    out = []
    for part in url.split(","):
        head, sep, rest = part.strip().partition("://")
        at = rest.rfind("@")
        if sep and at >= 0:
            user, colon, _ = rest[:at].partition(":")
            rest = (f"{user}:***" if colon else "***") + rest[at:]
        out.append(head + sep + rest)
    return ",".join(out)


@dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL. ``servers``: the client's connection URL (NATS:
    comma-separated ``nats://host:port``; Redis: ``redis://...:port/db``);
    ``name``: the stream (NATS) or key prefix (Redis); ``display``: the URL
    with any password masked."""

    kind: BrokerKind
    servers: str
    name: str
    display: str

    @classmethod
    def parse(cls, text: str) -> BrokerURL:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        display = mask_servers(f"{scheme}://{parts.netloc}{parts.path}")
        if scheme not in ("nats", "redis", "rediss"):
            raise BrokerURLError(f"{display}: a broker URL is nats://HOST:PORT/STREAM "
                                 f"or redis://HOST:PORT/PREFIX")
        name = parts.path.strip("/")
        if not parts.netloc or not name:
            what = "STREAM" if scheme == "nats" else "PREFIX"
            raise BrokerURLError(f"{display}: expected {scheme}://HOST:PORT/{what}")
        if scheme == "nats":
            if not _NAME.match(name):
                raise BrokerURLError(f"{display}: a JetStream stream name is letters, "
                                     f"digits, '-' and '_', not {name!r}")
            hosts = [h for h in parts.netloc.split(",") if h]
            auth = ""
            if "@" in hosts[0]:
                auth, hosts[0] = hosts[0].rsplit("@", 1)
                auth += "@"
            servers = ",".join(f"nats://{auth}{h}" for h in hosts)
            return cls("nats", servers, name, display)
        db = parse_qs(parts.query).get("db", ["0"])[0]
        if not db.isdigit():
            raise BrokerURLError(f"{display}: db must be a number, not {db!r}")
        return cls("redis", f"{scheme}://{parts.netloc}/{db}", name, display)
