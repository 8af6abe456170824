"""Time zones: the model's database and query zones, as Omni's connection settings hold them.

Omni's connection has a *database* time zone (the zone the warehouse's tz-naive timestamps are
written in; UTC by default) and a *query* time zone (default "do not convert"). With a query
zone set, every timestamp dimension is converted from the database zone to the query zone
before grains, filters and sorts read it, and relative dates ("today", "last 7 days") are
evaluated in the query zone; ``convert_tz: false`` on a dimension opts it out. Assay's model
file holds the connection's settings, so the two zones are written there::

    timezone:
      database: UTC
      query: America/New_York

The conversion is one neutral ``exp.ConvertTimezone`` node (a tz-naive timestamp from the
database zone to tz-naive wall time of the query zone) wrapped around the dimension's SQL when
the model loads, so everything that reads the dimension reads it converted. sqlglot renders
that node right for DuckDB, PostgreSQL (``AT TIME ZONE`` twice), Snowflake and Spark
(``CONVERT_TIMEZONE``); for Trino and BigQuery it renders forms that depend on the session's
zone or do not type-check, so ``localized`` swaps in explicit ones; on MySQL/MariaDB,
``CONVERT_TZ`` with a named zone returns NULL unless the server's time zone tables are loaded,
so a conversion there is refused by name rather than risk NULLs.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlglot import exp
from sqlglot.errors import ParseError

from assay.errors import InvalidQuery, did_you_mean

#: names of the zone with no offset ever: one of them on each side is no conversion at all
_UTC: Final = frozenset({
    "UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
    "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0", "GMT+0", "GMT-0",
    "Etc/Greenwich", "Greenwich",
})  # fmt: skip
#: dialects whose rendering of ``exp.ConvertTimezone`` is right as sqlglot writes it
_AS_IS: Final = frozenset({"duckdb", "postgres", "snowflake", "spark"})
MYSQL_REFUSAL: Final = (
    "MySQL and MariaDB convert named time zones only when the server's time zone tables are "
    "loaded (mysql_tzinfo_to_sql); without them CONVERT_TZ returns NULL, so Assay does not "
    "convert time zones on MySQL/MariaDB yet: leave the model's timezone.query out, or set "
    "convert_tz: false on the timestamp dimensions"
)

TemporalKind = Literal["date", "naive", "aware", "time", "other"]


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_problem(value: object) -> str | None:
    """Why ``value`` is not an IANA time zone name (with a suggestion), or None."""
    if isinstance(value, str) and value in _zone_names():
        return None
    shown = repr(value)
    hint = ""
    if isinstance(value, str):
        by_case = {z.lower(): z for z in _zone_names()}
        exact = by_case.get(value.strip().lower())
        hint = f' Did you mean "{exact}"?' if exact else did_you_mean(value, _zone_names())
    expected = "expected an IANA name such as UTC or America/New_York"
    return f"unknown time zone {shown}: {expected}.{hint}"


@dataclass(frozen=True, slots=True)
class Zones:
    """The model's ``timezone`` setting: the database's zone and the zone queries show."""

    database: str = "UTC"
    #: None: Omni's "do not convert"
    query: str | None = None

    @property
    def converts(self) -> bool:
        """Whether timestamp dimensions are converted (a query zone other than the database's)."""
        return self.query is not None and not _same_zone(self.database, self.query)

    @property
    def clock_zone(self) -> str:
        """The zone relative dates are evaluated in: the query zone, else the database's (the
        zone of the values shown when nothing is converted)."""
        return self.query or self.database

    def now(self) -> datetime:
        """The wall-clock time now in ``clock_zone``, tz-naive like the values it is compared
        with."""
        return datetime.now(zoneinfo.ZoneInfo(self.clock_zone)).replace(tzinfo=None)

    def convert(self, value: exp.Expr) -> exp.Expr:
        """``value`` (a tz-naive timestamp in the database zone) as wall time in the query zone."""
        assert self.query is not None
        return exp.ConvertTimezone(
            source_tz=exp.Literal.string(self.database),
            target_tz=exp.Literal.string(self.query),
            timestamp=value,
        )


def _same_zone(a: str, b: str) -> bool:
    return a == b or (a in _UTC and b in _UTC)


def temporal_kind(dtype: exp.DataType) -> TemporalKind:
    """What a database type holds, as far as time zones go."""
    t = exp.DataType.Type
    if dtype.is_type(t.DATE, t.DATE32):
        return "date"
    if dtype.is_type(t.TIMESTAMPTZ, t.TIMESTAMPLTZ):
        return "aware"
    if dtype.is_type(t.TIME, t.TIMETZ):
        return "time"
    if dtype.is_type(*exp.DataType.TEMPORAL_TYPES):
        return "naive"
    return "other"


def kind_of_sql_type(sql_type: str, dialect: str) -> TemporalKind | None:
    """``temporal_kind`` of a catalog's type name; None when sqlglot cannot read it."""
    try:
        return temporal_kind(exp.DataType.build(sql_type, dialect=dialect))
    except (ParseError, ValueError):
        return None


def converted(tree: exp.Expr) -> bool:
    """Whether ``tree`` already reads a converted value (it is built on a converted dimension,
    or converts itself): it is not converted a second time."""
    return tree.find(exp.ConvertTimezone) is not None


def localized(tree: exp.Expr, dialect: str) -> exp.Expr:
    """``tree`` with each zone conversion in the form ``dialect`` evaluates as intended.

    Cheap for the dialects whose sqlglot rendering is right (no walk); MySQL refuses.
    """
    if dialect in _AS_IS or tree.find(exp.ConvertTimezone) is None:
        return tree
    if dialect == "mysql":
        raise InvalidQuery(MYSQL_REFUSAL)
    tree = tree.copy()  # the model's trees are shared: never rewritten in place
    for node in list(tree.find_all(exp.ConvertTimezone)):
        replacement = _explicit(node, dialect)
        if node is tree:
            return replacement
        node.replace(replacement)
    return tree


def _explicit(node: exp.ConvertTimezone, dialect: str) -> exp.Expr:
    value = node.args["timestamp"]
    source, target = node.args["source_tz"], node.args["target_tz"]
    if dialect == "trino":
        # at_timezone() takes a timestamp WITH time zone: a naive one would be read in the
        # session's zone, so the database zone is attached first, and the result made naive.
        aware = exp.Anonymous(this="WITH_TIMEZONE", expressions=[value, source])
        moved = exp.Anonymous(this="AT_TIMEZONE", expressions=[aware, target])
        return exp.Cast(this=moved, to=exp.DataType.build("timestamp"))
    if dialect == "bigquery":
        # TIMESTAMP(datetime, zone) reads wall time in a zone; DATETIME(timestamp, zone) is
        # the wall time in another: a DATETIME, BigQuery's tz-naive type.
        instant = exp.Anonymous(this="TIMESTAMP", expressions=[value, source])
        return exp.Anonymous(this="DATETIME", expressions=[instant, target])
    return node


@dataclass(frozen=True, slots=True)
class Decision:
    """What the loader does with one dimension under the model's zones."""

    tree: exp.Expr
    #: why the model is refused (None: fine)
    problem: str | None = None
    #: a dimension of unknown type with no timeframes: not a time (its grains are missing
    #: fields), since a grain of an unconverted timestamp would be in the wrong zone
    not_a_time: bool = False


_KIND_WORDS: Final = {"date": "a DATE", "time": "a TIME of day", "other": "not a timestamp"}


def decide(
    zones: Zones,
    tree: exp.Expr,
    *,
    kind: TemporalKind | None,
    explicit: bool | None,
    timeframes: bool,
    reads: tuple[str, ...] = (),
) -> Decision:
    """Whether a dimension is converted to the query zone, as Omni does, or why not.

    ``kind``: what its value is (None: Assay cannot tell: no catalog type and no CAST);
    ``explicit``: its ``convert_tz``; ``timeframes``: whether it lists any; ``reads``: the
    timestamp columns its SQL reads directly. Omni converts every time dimension unless
    ``convert_tz: false``; Assay converts what it knows to be a tz-naive timestamp (or what
    ``convert_tz: true`` says is one), leaves DATE columns whole (a date has no time of day to
    move: converting midnight would shift it to the day before west of the database zone), and
    asks where it cannot tell rather than guess.
    """
    if not zones.converts or explicit is False or converted(tree):
        return Decision(tree)
    if kind == "naive" or (kind is None and explicit):
        return Decision(zones.convert(tree))
    if kind == "aware":
        return Decision(tree, "holds timestamps WITH time zone: Assay converts tz-naive "
                        "timestamps only yet; set convert_tz: false to show them as the "
                        "database returns them")  # fmt: skip
    if kind is not None:
        if explicit:
            return Decision(tree, f"convert_tz: true, but its value is {_KIND_WORDS[kind]}: "
                            "only a timestamp has a time of day to move between zones")  # fmt: skip
        return Decision(tree)
    if timeframes or reads:
        what = f"reads the timestamp column {reads[0]}" if reads else "lists timeframes"
        advice = " (or reference the dimension as ${...} to read it converted)" if reads else ""
        return Decision(tree, f"{what}, and Assay cannot tell whether its value is a "
                        f"timestamp: set convert_tz: true to convert it from {zones.database} "
                        f"to {zones.query}, or convert_tz: false{advice}")  # fmt: skip
    return Decision(tree, not_a_time=True)
