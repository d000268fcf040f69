"""Logins in configs: endpoint addresses, SoupBinTCP credentials and the passwords behind them.

The live node, the loopback venue and the recorder read the same keys (an address, a username,
exactly one of password / password_env / password_file) through these, so each is checked one way.
A password is a Secret: it never appears in a repr, str, error or log; the checks of its value say
what is wrong with it, never what it is.
"""
from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lockstep.checks import kind_of
from lockstep.enums import Transport
from lockstep.errors import AddressError, ConfigError
from lockstep.net import Address, parse_address

__all__ = ["PASSWORD_KEYS", "PASSWORD_WIDTH", "USERNAME_WIDTH", "Secret", "address_setting",
           "credential_setting", "password_setting"]

#: The keys a password may come from; exactly one is given.
PASSWORD_KEYS = ("password", "password_env", "password_file")
# SoupBinTCP login fields: username 6 bytes, password 10, printable ASCII without spaces.
USERNAME_WIDTH = 6
PASSWORD_WIDTH = 10
_CREDENTIAL = re.compile(r"[!-~]+")


def address_setting(key: str, value: object, transport: Transport) -> Address:
    """The address config key `key` gives, which must be of `transport` (the live node's
    endpoints are checked by this too)."""
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a {transport.label}://HOST:PORT string, not {kind_of(value)}")
    try:
        address = parse_address(value)
    except AddressError as e:
        raise ConfigError(key, str(e)) from None
    if address.transport != transport:
        raise ConfigError(key, f"{value!r} must be a {transport.label}:// address")
    return address


def credential_setting(key: str, value: object, width: int) -> str:
    """A SoupBinTCP username or password from config key `key`: printable ASCII that fits the
    login request's `width`-byte field."""
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {kind_of(value)}")
    if not _CREDENTIAL.fullmatch(value) or len(value) > width:
        raise ConfigError(key, f"must be 1 to {width} printable ASCII characters without spaces")
    return value


class Secret:
    """A string that does not show itself: repr and str are "Secret(***)", formatting too;
    reveal() is the one way to read it (at the moment it goes on the wire)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self):  # a copy of a config (multiprocessing) keeps its password
        return (Secret, (self._value,))


def password_setting(data: Mapping[str, Any], prefix: str, base_dir: Path,
              environ: Mapping[str, str]) -> dict[str, Any]:
    """A SoupBinTCP password from exactly one of `prefix` + password, password_env (a variable
    of `environ`) or password_file (relative to `base_dir`, readable by its owner only), as
    {"password": Secret, and "password_env" or "password_file": where it came from}. No message here may quote the password: the checks
    of its value say what is wrong with it, never what it is."""
    given = [k for k in PASSWORD_KEYS if k in data]
    if len(given) != 1:
        listed = ", ".join(prefix + k for k in PASSWORD_KEYS)
        what = "missing" if not given else f"{len(given)} given ({', '.join(prefix + k for k in given)})"
        raise ConfigError(prefix + "password", f"exactly one of {listed} is needed: {what}")
    key = given[0]
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(prefix + key, f"must be a string, not {kind_of(value)}")
    if key == "password":
        return {"password": Secret(credential_setting(prefix + key, value, PASSWORD_WIDTH))}
    if key == "password_env":
        if not value or "=" in value:
            raise ConfigError(prefix + key, f"{value!r} is not an environment variable name")
        if value not in environ:
            raise ConfigError(prefix + key, f"the environment variable {value} is not set")
        secret = _credential_from(prefix + key, value, environ[value])
        return {"password": Secret(secret), "password_env": value}
    path = Path(value)
    if not path.is_absolute():
        path = base_dir / path
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(prefix + key, f"{path} is not a file")
        if st.st_mode & 0o077:
            raise ConfigError(prefix + key, f"{path} may be read by group or others "
                                            f"(mode {stat.S_IMODE(st.st_mode):o}): chmod 600 it")
        text = path.read_text(encoding="ascii")
    except OSError as e:
        raise ConfigError(prefix + key, f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(prefix + key, f"{path} is not ASCII text") from None
    # One line: an editor's final newline is not part of the password.
    secret = text.removesuffix("\n")
    secret = secret.removesuffix("\r")
    secret = _credential_from(prefix + key, str(path), secret)
    return {"password": Secret(secret), "password_file": str(path.resolve())}


def _credential_from(key: str, where: str, value: str) -> str:
    """The password read from `where` (a variable, a file), checked; errors name the key and
    where, and say what is wrong, never what the value is."""
    try:
        return credential_setting(key, value, PASSWORD_WIDTH)
    except ConfigError as e:
        raise ConfigError(key, f"the password in {where} {e.reason}") from None
