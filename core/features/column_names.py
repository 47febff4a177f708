"""What a source column's name says about its values: identifiers whose size means nothing,
and numbers that are instants.

A number that names something (a customer number, a zip code, a card number, a branch number) is
not a quantity: its mean over a session is noise, and where new ids are handed out in order,
every account opened after the training window lies beyond the range the model saw, so it
looks new. ``core.features.extras`` therefore types a numeric extra column named like an
identifier as categorical when it has few values (a branch number: rarity and novelty), and
ignores it otherwise, unless the mapping types it.

    >>> name_tokens("customerID"), name_tokens("cc_num"), name_tokens("IPAddress")
    (('customer', 'id'), ('cc', 'num'), ('ip', 'address'))
    >>> [looks_like_identifier(n) for n in ("cc_num", "zip", "storeId", "num_items", "amount")]
    [True, True, True, False, False]

An epoch number (``created_at`` = 1767225600) is an instant, as an ISO string would be; but a
number between 1e8 and 4e9 may as well be a count, so a numeric column is read as instants
only when its name says it holds them (``looks_like_time``) and its values lie in the range of
epoch seconds, milliseconds or microseconds between 1973 and 2103.

    >>> [looks_like_time(n) for n in ("created_at", "signupTime", "dob", "duration", "attempts")]
    [True, True, True, False, False]
"""

from __future__ import annotations

import re

IDENTIFIER_TOKENS = frozenset({
    "id", "ids", "uuid", "guid", "num", "number", "no", "nr", "code", "zip", "zipcode",
    "postcode", "postal", "phone", "msisdn", "imei", "iban", "ssn"})
"""A name whose last word is one of these names something (``cc_num``, ``zip_code``,
``order_no``, ``phone_number``)."""
IDENTIFIER_ANYWHERE = frozenset({"id", "uuid", "guid"})
"""These words make an identifier wherever they stand (``id_customer``)."""
IDENTIFIER_NAMES = frozenset({("ip",), ("ip", "address"), ("ipaddress",)})
"""Whole names of identifiers whose last word alone says nothing (``ip_address``)."""

TIME_TOKENS = frozenset({"time", "ts", "timestamp", "date", "datetime", "at", "epoch", "dob",
                         "dt", "on"})
"""A name whose last word is one of these holds instants (``signup_time``, ``created_at``,
``birth_date``, ``updated_on``)."""

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def name_tokens(column: str) -> tuple[str, ...]:
    """The words of a column name, lower case: snake, kebab, spaced and camel case alike."""
    return tuple(w.lower() for w in _WORD.findall(column))


def looks_like_identifier(column: str) -> bool:
    """True for a column named like an identifier (module docstring)."""
    words = name_tokens(column)
    if not words:
        return False
    return (words[-1] in IDENTIFIER_TOKENS or words in IDENTIFIER_NAMES
            or any(w in IDENTIFIER_ANYWHERE for w in words))


def looks_like_time(column: str) -> bool:
    """True for a column named like instants (module docstring)."""
    words = name_tokens(column)
    return bool(words) and words[-1] in TIME_TOKENS
