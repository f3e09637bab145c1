"""Broker URLs of the CLI: ``nats://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/STREAM``
(a JetStream stream; several servers of one cluster; ``tls://`` for TLS) and
``redis://[USER][:PASSWORD]@HOST:PORT/PREFIX[?db=N]`` (the prefix of the
stream keys; Redis database N, default 0; ``rediss://`` for TLS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

PORTS = {"redis": 6379, "rediss": 6379, "nats": 4222, "tls": 4222}
# seconds tail and apply wait for an unreachable broker with --no-follow
NO_FOLLOW_RETRY = 10.0


class BrokerURLError(ValueError):
    """A broker URL that cannot be used (one line, password masked)."""


def mask_servers(url: str) -> str:
    """``url`` (one server URL or a comma-separated list) with passwords and
    tokens replaced by ``***``."""
    out = []
    for part in url.split(","):
        head, sep, rest = part.strip().partition("://")
        at = rest.rfind("@", 0, rest.find("/") if "/" in rest else len(rest))
        if sep and at >= 0:
            user, colon, _ = rest[:at].partition(":")
            rest = (f"{user}:***" if colon else "***") + rest[at:]
        out.append(head + sep + rest)
    return ",".join(out)


@dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL: ``path`` is the stream (NATS) or key prefix (Redis)."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    user: str | None
    password: str | None = field(repr=False)
    path: str
    query: dict[str, str]
    text: str = field(repr=False)

    @property
    def kind(self) -> str:
        return "redis" if self.scheme.startswith("redis") else "nats"

    @property
    def display(self) -> str:
        """The URL with any password masked."""
        return mask_servers(self.text)

    @property
    def netloc(self) -> str:
        """``host:port[,host:port]`` without credentials."""
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)

    @property
    def servers(self) -> str:
        """The client's connection URL(s), credentials included (never print
        it): comma-separated ``nats://...`` URLs, or ``redis://.../db``."""
        creds = ""
        if self.user is not None or self.password is not None:
            creds = quote(self.user or "", safe="")
            creds += f":{quote(self.password, safe='')}" if self.password is not None else ""
            creds += "@"
        hosts = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts]
        if self.kind == "redis":
            return f"{self.scheme}://{creds}{hosts[0]}/{self.query.get('db', '0')}"
        return ",".join(f"{self.scheme}://{creds}{h}" for h in hosts)

    @classmethod
    def parse(cls, text: str) -> BrokerURL:
        shown = mask_servers(text)
        scheme = text.partition("://")[0].lower()
        if scheme not in PORTS or "://" not in text:
            raise BrokerURLError(f"{shown}: a broker URL starts with redis://, rediss://, "
                                 "nats:// or tls://")
        rest = text.split("://", 1)[1]
        netloc, slash, tail = rest.partition("/")
        path, _, query = tail.partition("?")
        creds, at, hostpart = netloc.rpartition("@")
        user = password = None
        if at:
            u, colon, p = creds.partition(":")
            user = unquote(u) or None
            password = unquote(p) if colon else None
        hosts = []
        for item in hostpart.split(","):
            try:
                parts = urlsplit(f"//{item}")
                host, port = parts.hostname, parts.port
            except ValueError:
                raise BrokerURLError(f"{shown}: bad host:port {item!r}") from None
            if not host:
                raise BrokerURLError(f"{shown}: no host")
            hosts.append((host, port or PORTS[scheme]))
        if len(hosts) > 1 and scheme.startswith("redis"):
            raise BrokerURLError(f"{shown}: one Redis host only")
        path = unquote(path)
        what = "key prefix" if scheme.startswith("redis") else "stream name"
        if not slash or not path or "/" in path:
            raise BrokerURLError(f"{shown}: expected the {what} as the URL path "
                                 f"({scheme}://HOST:PORT/{what.split()[-1].upper()})")
        params = {k.lower(): v for k, v in parse_qsl(query)}
        if not params.get("db", "0").isdigit():
            raise BrokerURLError(f"{shown}: db must be a number")
        return cls(scheme, tuple(hosts), user, password, path, params, text)
