"""Rendering of command results: Vault's key/value table, JSON, YAML and ``-field``."""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from strongroom.cli.flags import UsageError

FORMAT_ENV = ("STRONGROOM_FORMAT", "VAULT_FORMAT", "BAO_FORMAT")
_FORMATS = ("table", "json", "yaml")
# Vault's columnize settings: four spaces between columns, "n/a" for blanks.
_GLUE = "    "
_EMPTY = "n/a"

Row = tuple[str, Any]


def yaml_available() -> bool:
    """Return whether PyYAML can be imported (``-format=yaml`` depends on it)."""
    return importlib.util.find_spec("yaml") is not None


def resolve_format(flag_value: str | None, env: Mapping[str, str]) -> str:
    """Pick the output format: the ``-format`` flag, else ``*_FORMAT``, else table.

    Args:
        flag_value: The ``-format`` value if the flag was given, else ``None``.
        env: Environment to consult.

    Returns:
        One of ``"table"``, ``"json"`` or ``"yaml"``.

    Raises:
        UsageError: Unknown format, or ``yaml`` without PyYAML installed.
    """
    fmt = flag_value
    if fmt is None:
        fmt = next((env[n] for n in FORMAT_ENV if env.get(n)), "table")
    fmt = fmt.strip().lower()
    if fmt not in _FORMATS:
        raise UsageError(f"Invalid output format: {fmt}")
    if fmt == "yaml" and not yaml_available():
        raise UsageError("Invalid output format: yaml (PyYAML is not installed)")
    return fmt


def go_value(value: Any) -> str:
    """Render a JSON value the way Go's ``%v`` does, which is what Vault's tables show.

    Examples: ``True`` -> ``true``, ``None`` -> ``<nil>``, ``[1, 2]`` -> ``[1 2]``,
    ``{"b": 1, "a": 2}`` -> ``map[a:2 b:1]``.
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def human_duration(seconds: Any) -> str:
    """Format a TTL in seconds as Vault does, e.g. ``2764800`` -> ``768h``, ``90`` -> ``1m30s``.

    Non-numeric input is returned unchanged (via :func:`go_value`).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
        return go_value(seconds)
    try:
        total = int(seconds)
    except ValueError:
        return go_value(seconds)
    if total == 0:
        return "0s"
    sign, total = ("-", -total) if total < 0 else ("", total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours}h{minutes}m{secs}s"
    else:
        text = f"{minutes}m{secs}s" if minutes else f"{secs}s"
    # Go prints 768h0m0s; Vault trims the zero tail to 768h.
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return sign + text


def looks_like_duration(key: str) -> bool:
    """Return whether Vault would show ``key``'s value as a duration in a table."""
    return (key in ("period", "ttl", "duration", "lease_max", "ttl_max")
            or key.endswith(("_period", "_ttl", "_duration")))


def table(rows: Sequence[Row], header: tuple[str, str] | None = ("Key", "Value")) -> str:
    """Lay out rows as Vault's two-column table.

    Args:
        rows: ``(label, value)`` pairs; values go through :func:`go_value` unless
            already strings, and empty strings print as ``n/a``.
        header: Column titles, underlined with dashes; ``None`` omits them.

    Returns:
        The table text without a trailing newline.
    """
    cells: list[tuple[str, str]] = []
    if header is not None:
        cells.append(header)
        cells.append(("-" * len(header[0]), "-" * len(header[1])))
    for label, value in rows:
        text = value if isinstance(value, str) else go_value(value)
        cells.append((label or _EMPTY, text or _EMPTY))
    if not cells:
        return ""
    width = max(len(label) for label, _ in cells)
    return "\n".join(f"{label.ljust(width)}{_GLUE}{text}".rstrip() for label, text in cells)


def map_rows(data: Mapping[str, Any]) -> list[Row]:
    """Turn a response object into sorted table rows, humanizing TTL-like keys."""
    return [(k, human_duration(data[k]) if looks_like_duration(k) else data[k])
            for k in sorted(data)]


def to_json(data: Any) -> str:
    """Serialize as indented JSON (two spaces, as ``vault -format=json``)."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def to_yaml(data: Any) -> str:
    """Serialize as block-style YAML with sorted keys; requires PyYAML."""
    # Imported by name: PyYAML is optional and its type stubs may be missing.
    yaml: Any = importlib.import_module("yaml")

    class GoStyleDumper(yaml.SafeDumper):  # type: ignore[misc]
        """Quote strings with double quotes where quoting is needed, as Go's yaml does."""

        def choose_scalar_style(self) -> Any:
            style = super().choose_scalar_style()
            return '"' if style == "'" else style

    def represent_str(dumper: Any, text: str) -> Any:
        # Multi-line strings (policies, PEM blocks) as literal blocks, like Go's yaml.
        style = "|" if "\n" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    GoStyleDumper.add_representer(str, represent_str)

    text: str = yaml.dump(data, Dumper=GoStyleDumper, default_flow_style=False,
                          sort_keys=True, allow_unicode=True)
    return text.rstrip("\n")


def render(data: Any, fmt: str, rows: Sequence[Row] | None = None) -> str:
    """Render ``data`` in ``fmt``.

    Args:
        data: The structured result (what JSON/YAML print).
        fmt: ``table``, ``json`` or ``yaml``.
        rows: Table rows to use instead of the sorted keys of ``data``.

    Returns:
        The text to print, without a trailing newline.
    """
    if fmt == "json":
        return to_json(data)
    if fmt == "yaml":
        return to_yaml(data)
    if rows is None:
        rows = map_rows(data) if isinstance(data, Mapping) else [("value", data)]
    return table(rows)


def field_text(data: Mapping[str, Any], name: str, fmt: str) -> str | None:
    """Return the text ``-field=name`` prints, or ``None`` if the field is absent.

    See :func:`format_field` for how the value is rendered.
    """
    if name not in data or data[name] is None:
        return None
    return format_field(data[name], fmt)


def format_field(value: Any, fmt: str) -> str:
    """Render one ``-field`` value as Vault's ``PrintRawField`` does.

    In table mode strings print raw and anything else as Go ``%v``; with
    ``-format=json``/``yaml`` the value is encoded, strings included (so
    ``-field=a -format=json`` prints ``"1"``).
    """
    if fmt == "table":
        return value if isinstance(value, str) else go_value(value)
    return render(value, fmt)


def columns(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Lay out a multi-column table as Vault's ``columnize`` does.

    The header is underlined with dashes, columns are separated by four
    spaces and empty cells print as ``n/a``.
    """
    cells = [list(header), ["-" * len(h) for h in header]]
    cells += [[c if isinstance(c, str) else go_value(c) for c in row] for row in rows]
    cells = [[c or _EMPTY for c in row] for row in cells]
    widths = [max(len(row[i]) for row in cells if i < len(row))
              for i in range(max(len(r) for r in cells))]
    return "\n".join(_GLUE.join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()
                     for row in cells)


def go_quoted_list(value: Any) -> str:
    """Render a string list like Go's ``%q``: ``["a" "b"]`` (``[]`` for none)."""
    items = value if isinstance(value, list) else []
    return "[" + " ".join(json.dumps(str(v), ensure_ascii=False) for v in items) + "]"


def write_raw(stream: TextIO, text: str) -> None:
    """Write a ``-field`` value; a newline only goes to terminals.

    Vault leaves the newline off so ``$(strongroom ... -field=x)`` and redirects
    capture the exact value, but adds it on a TTY so the prompt is not glued on.
    """
    stream.write(text)
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        stream.write("\n")
    stream.flush()
