"""Pivoted queries: Omni's row and column numbering around the grouped query (spec 2.2).

The database does not reshape anything. The grouped query (no ORDER BY, no LIMIT) is wrapped
so each (row key x pivot key) cell carries ``$omni_pivot_row_num`` (dense rank of the row
dimensions, in row-sort order) and ``$omni_pivot_col_num`` (dense rank of the pivot fields,
in column-sort order), as the SQL Omni generates does. ``limit`` and ``offset`` count pivot
rows; ``column_limit`` keeps columns 1..N, and a row whose cells all lie beyond N keeps its
first cell, so no row disappears. Numbering is over the whole grouped result, before the row
limit, so the column numbers of a page do not depend on which rows it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported, did_you_mean
from assay.semantic.compiler.build import BuildInput, build, own_ctes
from assay.semantic.compiler.resolve import Selected
from assay.semantic.pivot_request import PivotValue
from assay.semantic.query import Sort

ROW_NUM = "$omni_pivot_row_num"
COL_NUM = "$omni_pivot_col_num"
ROW_TOTAL = "$omni_row_total_indicator"
PIVOT_COLUMNS = (ROW_NUM, COL_NUM)
_FIRST_COL = "$omni_pivot_first_col"


def pivot_columns(row_totals: tuple[str, ...]) -> tuple[str, ...]:
    """The helper columns after a pivoted query's fields."""
    return (*PIVOT_COLUMNS, ROW_TOTAL) if row_totals else PIVOT_COLUMNS


def _id(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_id(name), table=exp.to_identifier(table) if table else None)


def _subquery(select: exp.Query, alias: str) -> exp.Subquery:
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def pivoted(
    inp: BuildInput,
    pivots: tuple[str, ...],
    column_limit: int,
    row_totals: tuple[str, ...] = (),
    fill_base: Callable[[exp.Select], exp.Select] | None = None,
) -> exp.Select:
    """The pivoted query's tree: the fields in request order, then the two numbers (and the
    row-total indicator when ``row_totals`` names measures).

    ``fill_base``: fills the grouped query's dimensions (``fill_fields``) before the cells
    are numbered (spec 1.7: group, fill, then number), so filled rows and columns are
    numbered and counted by ``limit`` like the data's.

    A measure sort orders rows by the measure at one pivot value (``pivot_value_map``).

    Raises ``InvalidQuery`` for a pivot that is not a dimension of the query, a column sort
    on a row dimension, and a ``pivot_value_map`` that does not name every pivot;
    ``NotSupported`` for a measure sort without one (what it would mean across pivot
    columns is not pinned down: refused rather than guessed).
    """
    selected = {s.alias: s for s in inp.res.selected}
    for name in pivots:
        sel = selected.get(name)
        if sel is None:
            raise InvalidQuery(
                f'query.pivots: "{name}" could not be resolved (see missing_fields); '
                "a pivot must be a valid dimension of the query"
            )
        if sel.dimension is None:
            raise InvalidQuery(f'query.pivots: "{name}" is a measure; pivots must be dimensions')
    rows = [s for s in inp.res.selected if s.dimension is not None and s.alias not in pivots]
    row_sorts, col_sorts = _split_sorts(inp.sorts, selected, pivots)
    row_keys = [*row_sorts, *(Sort(s.alias) for s in rows if s.alias not in _named(row_sorts))]
    col_keys = [*col_sorts, *(Sort(p) for p in pivots if p not in _named(col_sorts))]
    base = build(replace(inp, sorts=(*row_keys, *col_keys), limit=None, offset=0))
    assert isinstance(base, exp.Select)
    if fill_base is not None:
        base = fill_base(base)
    names = _short_names(base, inp.res.selected)
    keys = _order_keys(base, names)
    source: exp.Query = base
    totalled = bool(row_totals)
    if totalled:
        source = _with_row_totals(inp, base, pivots, row_keys, row_totals, names)
    if any(k.pivot_values for k in row_keys):
        source = _valued_keys(source, keys, row_keys, rows, names, totalled)
    row_order = _tie_broken(keys[: len(row_keys)], [names[s.alias] for s in rows])
    col_order = _tie_broken(keys[len(row_keys) :], [names[p] for p in pivots])

    fields = [names[s.alias] for s in inp.res.selected]
    carried = [*fields, ROW_TOTAL] if totalled else fields
    numbered = exp.Select(expressions=[_col(f, "b") for f in carried])
    row_num: exp.Expr = (
        exp.Window(this=exp.Anonymous(this="DENSE_RANK"), order=exp.Order(expressions=row_order))
        if row_order
        else exp.Literal.number(1)  # every field is a pivot: one row
    )
    col_num: exp.Expr = exp.Window(
        this=exp.Anonymous(this="DENSE_RANK"), order=exp.Order(expressions=col_order)
    )
    if totalled:  # a total is no pivot column: cells are numbered among themselves
        is_cell = exp.Is(this=_col(ROW_TOTAL, "b"), expression=exp.Null())
        col_num.set("partition_by", [_col(ROW_TOTAL, "b")])
        col_num = exp.Case(ifs=[exp.If(this=is_cell, true=col_num)])
    numbered.append("expressions", exp.Alias(this=row_num, alias=_id(ROW_NUM)))
    numbered.append("expressions", exp.Alias(this=col_num, alias=_id(COL_NUM)))
    numbered.set("from_", exp.From(this=_subquery(source, "b")))

    kept = exp.Select(expressions=[_col(f, "n") for f in [*carried, ROW_NUM, COL_NUM]])
    first = exp.Window(this=exp.Min(this=_col(COL_NUM, "n")), partition_by=[_col(ROW_NUM, "n")])
    kept.append("expressions", exp.Alias(this=first, alias=_id(_FIRST_COL)))
    kept.set("from_", exp.From(this=_subquery(numbered, "n")))
    window = _row_window(_col(ROW_NUM, "n"), inp.limit, inp.offset)
    if window is not None:
        kept.set("where", exp.Where(this=window))

    out = exp.Select(
        expressions=[
            exp.Alias(this=_col(names[s.alias], "c"), alias=_id(s.alias)) for s in inp.res.selected
        ]
    )
    shown_row: exp.Expr = _col(ROW_NUM, "c")
    if inp.offset:  # the rows of a page are numbered from 1
        shown_row = exp.Sub(this=shown_row, expression=exp.Literal.number(inp.offset))
    out.append("expressions", exp.Alias(this=shown_row, alias=_id(ROW_NUM)))
    out.append("expressions", exp.Alias(this=_col(COL_NUM, "c"), alias=_id(COL_NUM)))
    if totalled:
        out.append("expressions", exp.Alias(this=_col(ROW_TOTAL, "c"), alias=_id(ROW_TOTAL)))
    out.set("from_", exp.From(this=_subquery(kept, "c")))
    in_limit = exp.LTE(this=_col(COL_NUM, "c"), expression=exp.Literal.number(column_limit))
    first_cell = exp.EQ(this=_col(COL_NUM, "c"), expression=_col(_FIRST_COL, "c"))
    shown = exp.or_(in_limit, first_cell)
    if totalled:
        total = exp.Not(this=exp.Is(this=_col(ROW_TOTAL, "c"), expression=exp.Null()))
        shown = exp.or_(shown, total)
    out.set("where", exp.Where(this=shown))
    out.set(
        "order",
        exp.Order(expressions=[exp.Ordered(this=_col(ROW_NUM, "c")),
                               exp.Ordered(this=_col(COL_NUM, "c"), nulls_first=False)]),
    )  # fmt: skip
    return out


def _with_row_totals(
    inp: BuildInput,
    base: exp.Select,
    pivots: tuple[str, ...],
    row_keys: list[Sort],
    row_totals: tuple[str, ...],
    names: dict[str, str],
) -> exp.Query:
    """The cells, and under them one total per pivot row: the same query grouped by the row
    dimensions alone, so each total is its measure re-aggregated over the row's rows (never
    a sum of cells: counts of distinct values and averages stay right), governed alike.
    Its pivot fields, and measures ``row_totals`` does not name, are NULL; the two sides
    are told apart by ``$omni_row_total_indicator`` (``row_total``)."""
    for name in row_totals:
        sel = next((s for s in inp.res.selected if s.alias == name), None)
        if sel is None or sel.measure is None:
            raise InvalidQuery(f'query.row_totals: "{name}" is not a measure of the query')
    kept = [s for s in inp.res.selected if s.alias not in pivots]
    totals = build(
        replace(inp, res=replace(inp.res, selected=kept), sorts=tuple(row_keys), limit=None,
                offset=0)
    )  # fmt: skip
    assert isinstance(totals, exp.Select)
    _short_names(totals, kept, names)
    _order_keys(totals, names)  # the row keys' sort columns, named as the cells' are
    present = {p.alias for p in totals.expressions if isinstance(p, exp.Alias)}
    columns = [p.alias for p in base.expressions if isinstance(p, exp.Alias)]
    measures = {names[s.alias] for s in kept if s.measure is not None}
    totalled = {names[m] for m in row_totals}
    cells = exp.Select(expressions=[_col(c, "t0") for c in columns])
    cells.append("expressions", exp.Alias(this=exp.Null(), alias=_id(ROW_TOTAL)))
    cells.set("from_", exp.From(this=_subquery(base, "t0")))
    sums = exp.Select()
    for c in columns:
        wanted = c in present and (c not in measures or c in totalled)
        value: exp.Expr = _col(c, "t1") if wanted else exp.Null()
        sums.append("expressions", exp.Alias(this=value, alias=_id(c)))
    sums.append(
        "expressions", exp.Alias(this=exp.Literal.string("row_total"), alias=_id(ROW_TOTAL))
    )
    renamed = own_ctes(totals, "r_")  # Spark hoists CTEs: the cells' and these would collide
    assert isinstance(renamed, exp.Select)
    sums.set("from_", exp.From(this=_subquery(renamed, "t1")))
    return exp.Union(this=cells, expression=sums, distinct=False)


def _named(sorts: list[Sort]) -> set[str]:
    return {s.field for s in sorts}


def _split_sorts(
    sorts: tuple[Sort, ...], selected: dict[str, Selected], pivots: tuple[str, ...]
) -> tuple[list[Sort], list[Sort]]:
    """Row sorts (on row dimensions) and column sorts (on pivots: ``is_column_sort`` or
    not, since a pivot field can only order columns)."""
    rows: list[Sort] = []
    cols: list[Sort] = []
    for s in sorts:
        sel = selected[s.field]
        if sel.measure is not None:
            _check_measure_sort(s, pivots)
            rows.append(s)
            continue
        if s.pivot_values:
            raise InvalidQuery(
                f'query.sorts: "{s.field}" is a dimension; pivot_value_map picks the pivot '
                "value of a measure sort"
            )
        if s.field in pivots:
            if s.field not in _named(cols):
                cols.append(s)
        elif s.column_sort:
            raise InvalidQuery(
                f'query.sorts: "{s.field}" has is_column_sort but is not a pivot field; '
                "a column sort orders pivot columns (one of "
                f"{', '.join(pivots)})"
            )
        elif s.field not in _named(rows):
            rows.append(s)
    return rows, cols


def _check_measure_sort(s: Sort, pivots: tuple[str, ...]) -> None:
    """A measure sorts pivot rows by its value at one pivot value, which must be named
    whole: every pivot field, nothing else."""
    if s.column_sort:
        raise NotSupported(
            f'query.sorts: ordering pivot columns by the measure "{s.field}" is not supported '
            "yet; sort the columns by the pivot fields"
        )
    if not s.pivot_values:
        raise NotSupported(
            f'query.sorts: sorting a pivoted query by the measure "{s.field}" needs the pivot '
            "value to read it at (pivot_value_map: {pivot field: value}); sorting by a "
            "measure across all pivot columns is not supported yet"
        )
    named = [name for name, _ in s.pivot_values]
    for name in named:
        if name not in pivots:
            raise InvalidQuery(
                f'query.sorts: pivot_value_map of "{s.field}" names "{name}", which is not a '
                f"pivot of the query.{did_you_mean(name, pivots)}"
            )
    missing = [p for p in pivots if p not in named]
    if missing:
        raise InvalidQuery(
            f'query.sorts: pivot_value_map of "{s.field}" must give a value for every pivot; '
            f"missing {', '.join(missing)}"
        )


def _valued_keys(
    base: exp.Query,
    keys: list[exp.Ordered],
    row_keys: list[Sort],
    rows: list[Selected],
    names: dict[str, str],
    totalled: bool,
) -> exp.Select:
    """Measure sorts at a pivot value: each becomes ``$omni_pivot_sort_<i>``, the measure's
    value in the row's cell at that pivot value (NULL when the row has none there, so such
    rows come last), computed per row over the grouped query."""
    keyed = exp.Select(expressions=[exp.Column(this=exp.Star(), table=exp.to_identifier("b0"))])
    for i, sort in enumerate(row_keys):
        if not sort.pivot_values:
            continue
        conds = [_is(_col(names[p], "b0"), value) for p, value in sort.pivot_values]
        if totalled:  # a total's NULL pivot fields are no pivot value
            conds.append(exp.Is(this=_col(ROW_TOTAL, "b0"), expression=exp.Null()))
        cell = exp.Case(ifs=[exp.If(this=exp.and_(*conds), true=_col(names[sort.field], "b0"))])
        window = exp.Window(
            this=exp.Max(this=cell), partition_by=[_col(names[r.alias], "b0") for r in rows]
        )
        name = f"$omni_pivot_sort_{i}"
        keyed.append("expressions", exp.Alias(this=window, alias=_id(name)))
        keys[i].set("this", _col(name, "b"))
    keyed.set("from_", exp.From(this=_subquery(base, "b0")))
    return keyed


def _is(column: exp.Column, value: PivotValue) -> exp.Expr:
    if value is None:
        return exp.Is(this=column, expression=exp.Null())
    if isinstance(value, bool):
        literal: exp.Expr = exp.Boolean(this=value)
    elif isinstance(value, int | float):
        literal = exp.Literal.number(value)
    else:
        literal = exp.Literal.string(value)
    return exp.EQ(this=column, expression=literal)


def _short_names(
    base: exp.Select, selected: list[Selected], names: dict[str, str] | None = None
) -> dict[str, str]:
    """Rename the grouped query's columns ``c0``, ``c1`` ...: field names can pass the 64
    characters MySQL allows for a derived table's columns. The last SELECT names them back.
    ``names``: a naming already made (the row totals' query is named as the cells' is)."""
    if names is None:
        names = {s.alias: f"c{i}" for i, s in enumerate(selected)}
    for projection in base.expressions:
        if isinstance(projection, exp.Alias) and projection.alias in names:
            projection.set("alias", _id(names[projection.alias]))
    return names


def _order_keys(base: exp.Select, names: dict[str, str]) -> list[exp.Ordered]:
    """The grouped query's ORDER BY (one term per key, with its NULL placement), moved into
    the windows: a term on a field reads its column; a term on anything else (a
    dimension's ``order_by_field``) becomes a ``$omni_sort_<i>`` column of the grouped query."""
    order = base.args.get("order")
    base.set("order", None)
    out: list[exp.Ordered] = []
    for i, term in enumerate(order.expressions if order is not None else []):
        target = term.this
        if isinstance(target, exp.Column) and not target.table and target.name in names:
            name = names[target.name]
        else:
            name = f"$omni_sort_{i}"
            base.append("expressions", exp.Alias(this=target, alias=_id(name)))
        ordered = exp.Ordered(this=_col(name, "b"), desc=term.args.get("desc"))
        if term.args.get("nulls_first") is not None:
            ordered.set("nulls_first", term.args["nulls_first"])
        out.append(ordered)
    return out


def _tie_broken(keys: list[exp.Ordered], columns: list[str]) -> list[exp.Ordered]:
    """``keys``, then the fields themselves when a key is an ``order_by_field``: two values
    sharing a sort key must still be two rows (or two columns)."""
    if all(not k.this.name.startswith("$omni_sort_") for k in keys):
        return keys
    return [*keys, *(exp.Ordered(this=_col(c, "b"), nulls_first=False) for c in columns)]


def _row_window(row: exp.Column, limit: int | None, offset: int) -> exp.Expr | None:
    """Which pivot rows a page shows: ``limit`` rows after ``offset``."""
    conds: list[exp.Expr] = []
    if offset:
        conds.append(exp.GT(this=row, expression=exp.Literal.number(offset)))
    if limit is not None:
        conds.append(exp.LTE(this=row.copy(), expression=exp.Literal.number(offset + limit)))
    return exp.and_(*conds) if conds else None
