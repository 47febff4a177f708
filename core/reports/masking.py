"""Masking personal data in a case report: IPs, device and payment ids, e-mails, phone numbers.

IPs keep their network part (``203.0.113.7`` -> ``203.0.113.•••``), e-mails their domain,
phone numbers their last two digits; device and payment ids become keyed-hash tokens
(``device-3f9a2c1b7e``), equal within a report so an analyst can still see "same device", and
unlinkable across reports unless ``$ANOMALYST_MASK_KEY`` fixes the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from typing import Any

DOT = "•••"
_EMAIL = r"(?P<email>[\w.+-]+@(?P<domain>[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}))"
_IPV4 = r"(?P<ipv4>(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d))"
# At least three colons, so clock times (hh:mm:ss) are not taken for addresses.
_IPV6 = (r"(?P<ipv6>(?<![\w:])(?=(?:[0-9A-Fa-f]*:){3})(?:[0-9A-Fa-f]{0,4}:){2,7}"
         r"[0-9A-Fa-f]{1,4}(?![\w:]))")
# A phone candidate: optional +, then digits with spaces, dots, dashes or brackets between;
# validated below (7-15 digits, not a date, bare runs >= 10 digits), so ids, amounts and
# timestamps stay untouched.
_PHONE = r"(?P<phone>(?<![\w@.:/+-])\+?\(?\d[\d\s().-]{5,}\d(?![\w]))"
_PATTERN = re.compile("|".join((_EMAIL, _IPV4, _IPV6, _PHONE)))
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def mask_ip(value: str) -> str:
    """Hide the host part of an IPv4 (last octet) or IPv6 (all but the first two groups)."""
    if value.count(".") == 3 and ":" not in value:
        return value.rsplit(".", 1)[0] + "." + DOT
    if ":" in value:
        groups = [g for g in value.split(":") if g]
        return ":".join(groups[:2]) + ":" + DOT
    return DOT


def mask_phone(value: str) -> str | None:
    """Every digit but the last two replaced; None when ``value`` is not phone-like."""
    digits = sum(c.isdigit() for c in value)
    if not 7 <= digits <= 15 or _DATE.match(value.lstrip("+(")):
        return None
    if value.isdigit() and digits < 10:  # a bare short number is an order id, not a phone
        return None
    seen, out = 0, []
    for char in value:
        if char.isdigit():
            seen += 1
            out.append(char if seen > digits - 2 else "•")
        else:
            out.append(char)
    return "".join(out)


class Masker:
    """Masks strings, columns and nested JSON-like values with one key."""

    def __init__(self, *, devices: Iterable[str] = (), payments: Iterable[str] = (),
                 key: bytes | None = None) -> None:
        env = os.environ.get("ANOMALYST_MASK_KEY")
        self._key = key or (env.encode() if env else secrets.token_bytes(32))
        known = {str(d): self.token("device", str(d)) for d in devices if d}
        known.update({str(p): self.token("payment", str(p)) for p in payments if p})
        # Longest first, so an id that contains another is replaced whole.
        self._known = sorted(known.items(), key=lambda kv: -len(kv[0]))

    def token(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:10]}"

    def text(self, value: str) -> str:
        """Known device/payment ids, e-mails, IPs and phone numbers inside free text."""
        for raw, token in self._known:
            if raw in value:
                value = value.replace(raw, token)
        return _PATTERN.sub(self._replace, value)

    def deep(self, value: Any) -> Any:
        """``text`` applied to every string inside dicts and lists (keys are kept)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    @staticmethod
    def _replace(match: re.Match[str]) -> str:
        if match.group("email"):
            return f"{DOT}@{match.group('domain')}"
        if match.group("ipv4") or match.group("ipv6"):
            return mask_ip(match.group(0))
        masked = mask_phone(match.group("phone"))
        return match.group(0) if masked is None else masked
