"""The one error type users see: a single line that names the key, file or stage at fault."""


class ConfigError(ValueError):
    """Bad input. The CLI prints `error: <message>` and exits 2, with no traceback."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_key(ok: bool, key: str, msg: str) -> None:
    """`require` for a config key: the message is `<key>: <msg>`."""
    require(ok, f"{key}: {msg}")
