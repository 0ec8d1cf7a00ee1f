"""The one error type users see: a single line that names the key, file or stage at fault."""


class ConfigError(ValueError):
    """Bad input. The CLI prints `error: <message>` and exits 2, with no traceback."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
