//! Random SELECTs over the differential suite's fixed schema, typed so that every query is valid
//! SQL in both glaux and DuckDB: joins, subqueries, aggregates, window functions, CASE, casts,
//! string and date functions, set operations, ORDER BY … LIMIT.
//!
//! Query `n` of seed `s` depends on nothing else, so one mismatch reproduces alone. Constructs
//! whose meaning legitimately differs between the engines are left out on purpose; each is listed
//! in tests/known-differences.md with the reason.

use Ty::*;

pub use glaux_testkit::rng::Rng;

/// A column's or expression's type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ty {
    Int,
    Float,
    Dec,
    Str,
    Date,
    Ts,
    Bool,
    StrList,
    IntList,
    Struct,
}

const SCALARS: [Ty; 7] = [Int, Float, Dec, Str, Date, Ts, Bool];
/// Types whose values group and join exactly (no float keys).
const KEYS: [Ty; 4] = [Int, Str, Date, Bool];

pub struct Table {
    pub name: &'static str,
    /// Columns that identify a row: the tie-breaker of window orderings.
    pub key: &'static [&'static str],
    pub cols: &'static [(&'static str, Ty)],
    /// Hive partition columns (the last of `cols`).
    pub partitions: usize,
}

/// The tables bench/differential_duckdb.py writes.
pub const TABLES: [Table; 6] = [
    Table {
        name: "cust",
        key: &["c_id"],
        cols: &[("c_id", Int), ("c_name", Str), ("c_nation", Int), ("c_balance", Float), ("c_segment", Str)],
        partitions: 0,
    },
    Table {
        name: "orders",
        key: &["o_id"],
        cols: &[("o_id", Int), ("o_cust", Int), ("o_total", Dec), ("o_date", Date), ("o_status", Str), ("o_ts", Ts)],
        partitions: 0,
    },
    Table {
        name: "items",
        key: &["i_order", "i_line"],
        cols: &[
            ("i_order", Int),
            ("i_line", Int),
            ("i_qty", Int),
            ("i_price", Dec),
            ("i_disc", Float),
            ("i_flag", Str),
            ("i_ship", Date),
        ],
        partitions: 0,
    },
    Table {
        name: "nulls",
        key: &["n_id"],
        cols: &[
            ("n_id", Int),
            ("n_int", Int),
            ("n_str", Str),
            ("n_dbl", Float),
            ("n_bool", Bool),
            ("n_dec", Dec),
            ("n_date", Date),
        ],
        partitions: 0,
    },
    Table {
        name: "nested",
        key: &["id"],
        cols: &[("id", Int), ("tags", StrList), ("attrs", Struct), ("scores", IntList)],
        partitions: 0,
    },
    Table {
        name: "part",
        key: &["p_id"],
        cols: &[("p_id", Int), ("p_val", Float), ("p_name", Str), ("year", Int), ("region", Str)],
        partitions: 2,
    },
];

/// Columns two tables join on: (table, column, table, column).
const EDGES: [(&str, &str, &str, &str); 8] = [
    ("orders", "o_cust", "cust", "c_id"),
    ("items", "i_order", "orders", "o_id"),
    ("nulls", "n_id", "cust", "c_id"),
    ("nested", "id", "nulls", "n_id"),
    ("part", "p_id", "orders", "o_id"),
    ("nulls", "n_int", "cust", "c_nation"),
    ("part", "year", "orders", "o_id"),
    ("nested", "id", "cust", "c_nation"),
];

/// A type as Athena's DDL spells it.
pub fn athena_type(ty: Ty) -> &'static str {
    match ty {
        Int => "int",
        Float => "double",
        Dec => "decimal(12,2)",
        Str => "string",
        Date => "date",
        Ts => "timestamp",
        Bool => "boolean",
        StrList => "array<string>",
        IntList => "array<int>",
        Struct => "struct<a:int,b:string>",
    }
}

/// An expression's text without its casts: what DataFusion names it after.
pub(super) fn cast_free(sql: &str) -> String {
    let mut out = sql.replace("CAST(", "");
    for ty in ["VARCHAR", "DATE", "DOUBLE", "INTEGER", "DECIMAL(8, 2)"] {
        out = out.replace(&format!(" AS {ty})"), "");
    }
    out
}

fn table(name: &str) -> &'static Table {
    TABLES.iter().find(|t| t.name == name).expect("a table of the schema")
}

/// A column in scope: its SQL (`t1.c_id`) and type.
#[derive(Clone)]
struct Col {
    sql: String,
    ty: Ty,
}

/// A FROM clause and the columns it brings into scope.
struct From {
    sql: String,
    cols: Vec<Col>,
    tables: Vec<(&'static Table, String)>,
}

/// One generated query; `ordered` when its row order is part of the answer.
pub struct Query {
    pub sql: String,
    pub ordered: bool,
}

pub struct Generator {
    rng: Rng,
    aliases: usize,
}

impl Generator {
    pub fn new(seed: u64, n: u64) -> Self {
        Generator { rng: Rng::new(seed, n), aliases: 0 }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("t{}", self.aliases)
    }

    /// Query number `n` of the seed.
    pub fn query(&mut self) -> Query {
        match self.rng.below(100) {
            0..=24 => self.select(),
            25..=49 => self.aggregate(),
            50..=64 => self.window(),
            65..=79 => self.set_operation(),
            80..=89 => self.with_cte(),
            _ => self.scalar_subquery(),
        }
    }

    fn scan(&mut self, t: &'static Table) -> From {
        let alias = self.alias();
        let cols = t.cols.iter().map(|(c, ty)| Col { sql: format!("{alias}.{c}"), ty: *ty }).collect();
        From { sql: format!("{} {alias}", t.name), cols, tables: vec![(t, alias)] }
    }

    fn scan_any(&mut self) -> From {
        let t = self.rng.pick(&TABLES);
        self.scan(t)
    }

    /// One table, or up to three joined along the schema's edges.
    fn from(&mut self, joins: usize) -> From {
        let first = self.rng.pick(&TABLES);
        let mut from = self.scan(first);
        for _ in 0..joins {
            let edges: Vec<_> = EDGES
                .iter()
                .flat_map(|&(a, ac, b, bc)| [(a, ac, b, bc), (b, bc, a, ac)])
                .filter(|(a, ..)| from.tables.iter().any(|(t, _)| t.name == *a))
                .collect();
            let &(a, ac, b, bc) = self.rng.pick(&edges);
            let left = from.tables.iter().filter(|(t, _)| t.name == a).map(|(_, alias)| alias.clone()).next().unwrap();
            let right = self.scan(table(b));
            let kind = *self.rng.pick(&["JOIN", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]);
            let on = format!("{left}.{ac} = {}.{bc}", right.tables[0].1);
            let extra = if self.rng.chance(20) {
                let scope = [from.cols.clone(), right.cols.clone()].concat();
                format!(" AND {}", self.predicate(&scope, 1, false))
            } else {
                String::new()
            };
            from.sql = format!("{} {kind} {} ON {on}{extra}", from.sql, right.sql);
            from.cols.extend(right.cols);
            from.tables.extend(right.tables);
        }
        from
    }

    fn joins(&mut self) -> usize {
        *self.rng.pick(&[0, 0, 1, 1, 2])
    }

    fn literal(&mut self, ty: Ty) -> String {
        match ty {
            Int => (self.rng.below(60) as i64 - 15).to_string(),
            Float => format!("CAST({}.{} AS DOUBLE)", self.rng.below(80) as i64 - 20, self.rng.below(8) * 125),
            Dec => format!("CAST('{}.{:02}' AS DECIMAL(8, 2))", self.rng.below(200) as i64 - 50, self.rng.below(100)),
            Str => format!("'{}'", self.rng.pick(&["a", "bd", "", "AUTO", "O", "F", "x", "eu", "p3", "cust0007"])),
            Date => {
                format!("DATE '202{}-{:02}-{:02}'", self.rng.below(4), 1 + self.rng.below(12), 1 + self.rng.below(28))
            }
            Ts => format!(
                "TIMESTAMP '2020-{:02}-{:02} {:02}:00:00'",
                1 + self.rng.below(12),
                1 + self.rng.below(28),
                self.rng.below(24)
            ),
            Bool => self.rng.pick(&["TRUE", "FALSE"]).to_string(),
            StrList | IntList | Struct => "NULL".into(),
        }
    }

    fn column(&mut self, scope: &[Col], ty: Ty) -> Option<String> {
        let of: Vec<&Col> = scope.iter().filter(|c| c.ty == ty).collect();
        (!of.is_empty()).then(|| self.rng.pick(&of).sql.clone())
    }

    fn column_of(&mut self, scope: &[Col], types: &[Ty]) -> String {
        let of: Vec<&Col> = scope.iter().filter(|c| types.contains(&c.ty)).collect();
        self.rng.pick(&of).sql.clone()
    }

    fn leaf(&mut self, scope: &[Col], ty: Ty) -> String {
        match self.column(scope, ty) {
            Some(c) if !self.rng.chance(15) => c,
            _ => self.literal(ty),
        }
    }

    /// An expression of one of `types`.
    fn expr_of(&mut self, scope: &[Col], types: &[Ty], depth: u32) -> String {
        let ty = *self.rng.pick(types);
        self.expr(scope, ty, depth)
    }

    /// An expression of type `ty` over `scope`, at most `depth` operators deep.
    fn expr(&mut self, scope: &[Col], ty: Ty, depth: u32) -> String {
        if depth == 0 || self.rng.chance(35) {
            return self.leaf(scope, ty);
        }
        let d = depth - 1;
        if self.rng.chance(10) {
            let (p, a, b) = (self.predicate(scope, d, false), self.expr(scope, ty, d), self.expr(scope, ty, d));
            return format!("CASE WHEN {p} THEN {a} ELSE {b} END");
        }
        if self.rng.chance(8) {
            return format!("coalesce({}, {})", self.expr(scope, ty, d), self.expr(scope, ty, d));
        }
        let nested = |g: &mut Self, t: Ty| g.column(scope, t);
        match ty {
            Int => match self.rng.below(11) {
                0 => format!("({} + {})", self.expr(scope, Int, d), self.expr(scope, Int, d)),
                1 => format!("({} - {})", self.expr(scope, Int, d), self.expr(scope, Int, d)),
                2 => format!("({} * {})", self.expr(scope, Int, d), 1 + self.rng.below(9)),
                3 => format!("({} % {})", self.expr(scope, Int, d), 2 + self.rng.below(9)),
                4 => format!("abs({})", self.expr(scope, Int, d)),
                5 => format!("length({})", self.expr(scope, Str, d)),
                6 => {
                    format!("extract({} FROM {})", self.rng.pick(&["year", "month", "day"]), self.expr(scope, Date, d))
                }
                // floor first: DuckDB rounds a double's .5 to even, Athena away from zero
                7 => format!("CAST(floor({}) AS INTEGER)", self.expr(scope, Float, d)),
                8 => match nested(self, StrList) {
                    Some(l) => format!("array_length({l})"),
                    None => format!("(-{})", self.expr(scope, Int, d)),
                },
                9 => match nested(self, IntList) {
                    Some(l) => format!("{l}[{}]", 1 + self.rng.below(3)),
                    None => self.leaf(scope, Int),
                },
                _ => match nested(self, Struct) {
                    Some(s) => format!("{s}['a']"),
                    None => format!("CAST({} AS INTEGER)", self.expr(scope, Dec, d)),
                },
            },
            Float => match self.rng.below(6) {
                0 => format!("({} + {})", self.expr(scope, Float, d), self.expr(scope, Float, d)),
                1 => format!("({} * {})", self.expr(scope, Float, d), self.expr(scope, Float, d)),
                2 => format!("({} / NULLIF({}, 0))", self.expr(scope, Float, d), self.expr(scope, Float, d)),
                3 => format!("sqrt(abs({}))", self.expr(scope, Float, d)),
                4 => format!("CAST({} AS DOUBLE)", self.expr(scope, Int, d)),
                _ => format!("CAST({} AS DOUBLE)", self.expr(scope, Dec, d)),
            },
            Dec => match self.rng.below(4) {
                0 => format!("({} + {})", self.expr(scope, Dec, d), self.expr(scope, Dec, d)),
                1 => format!("({} - {})", self.expr(scope, Dec, d), self.expr(scope, Dec, d)),
                2 => format!("abs({})", self.expr(scope, Dec, d)),
                _ => format!("({} * {})", self.expr(scope, Dec, d), 1 + self.rng.below(5)),
            },
            Str => match self.rng.below(11) {
                0 => format!("upper({})", self.expr(scope, Str, d)),
                1 => format!("lower({})", self.expr(scope, Str, d)),
                2 => format!(
                    "substr({}, {}, {})",
                    self.expr(scope, Str, d),
                    1 + self.rng.below(3),
                    1 + self.rng.below(4)
                ),
                3 => format!("concat({}, {})", self.expr(scope, Str, d), self.expr(scope, Str, d)),
                4 => format!("({} || {})", self.expr(scope, Str, d), self.expr(scope, Str, d)),
                5 => format!("trim({})", self.expr(scope, Str, d)),
                6 => format!("replace({}, 'a', 'xy')", self.expr(scope, Str, d)),
                7 => format!("CAST({} AS VARCHAR)", self.expr(scope, Int, d)),
                8 => format!("CAST({} AS VARCHAR)", self.expr(scope, Date, d)),
                9 => match nested(self, StrList) {
                    Some(l) => format!("{l}[{}]", 1 + self.rng.below(3)),
                    None => format!("lpad({}, 5, '*')", self.expr(scope, Str, d)),
                },
                _ => match nested(self, Struct) {
                    Some(s) => format!("{s}['b']"),
                    None => format!("upper({})", self.expr(scope, Str, d)),
                },
            },
            Date => match self.rng.below(3) {
                0 => format!("CAST({} AS DATE)", self.expr(scope, Ts, d)),
                1 => format!(
                    "CAST(date_trunc('{}', {}) AS DATE)",
                    self.rng.pick(&["month", "year"]),
                    self.expr(scope, Date, d)
                ),
                _ => self.leaf(scope, Date),
            },
            Ts => match self.rng.below(2) {
                0 => format!("date_trunc('{}', {})", self.rng.pick(&["hour", "day", "month"]), self.expr(scope, Ts, d)),
                _ => self.leaf(scope, Ts),
            },
            Bool => self.predicate(scope, d, false),
            StrList | IntList | Struct => self.leaf(scope, ty),
        }
    }

    /// A condition over `scope`; with `subqueries`, possibly IN / EXISTS / a scalar subquery.
    fn predicate(&mut self, scope: &[Col], depth: u32, subqueries: bool) -> String {
        let d = depth.saturating_sub(1);
        if subqueries && self.rng.chance(25) {
            return self.subquery_predicate(scope);
        }
        if depth > 0 && self.rng.chance(25) {
            let (a, b) = (self.predicate(scope, d, subqueries), self.predicate(scope, d, false));
            return match self.rng.below(3) {
                0 => format!("({a} AND {b})"),
                1 => format!("({a} OR {b})"),
                _ => format!("(NOT {a})"),
            };
        }
        let ty = *self.rng.pick(&SCALARS);
        match self.rng.below(7) {
            0 => format!("{} IS {}NULL", self.expr(scope, ty, d), if self.rng.chance(50) { "NOT " } else { "" }),
            1 if matches!(ty, Int | Float | Date | Dec) => {
                let (lo, hi) = (self.literal(ty), self.literal(ty));
                format!("{} BETWEEN {lo} AND {hi}", self.expr(scope, ty, d))
            }
            2 if ty != Bool => {
                let mut list: Vec<String> = (0..1 + self.rng.below(3)).map(|_| self.literal(ty)).collect();
                if self.rng.chance(15) {
                    list.push("NULL".into());
                }
                let not = if self.rng.chance(30) { "NOT " } else { "" };
                format!("{} {not}IN ({})", self.expr(scope, ty, d), list.join(", "))
            }
            3 => {
                let pattern = self.rng.pick(&["a%", "%d", "%u%", "_", "cust00%", "%"]);
                let not = if self.rng.chance(30) { "NOT " } else { "" };
                format!("{} {not}LIKE '{pattern}'", self.expr(scope, Str, d))
            }
            4 if ty == Bool => self.leaf(scope, Bool),
            _ => {
                let op = self.rng.pick(&["=", "<>", "<", "<=", ">", ">="]);
                let ty = if ty == Bool { Int } else { ty };
                format!("{} {op} {}", self.expr(scope, ty, d), self.expr(scope, ty, d))
            }
        }
    }

    fn subquery_predicate(&mut self, scope: &[Col]) -> String {
        let outer: Vec<&Col> = scope.iter().filter(|c| c.ty == Int).collect();
        let Some(outer) = (!outer.is_empty()).then(|| self.rng.pick(&outer).sql.clone()) else {
            return "TRUE".into();
        };
        let inner = self.scan_any();
        let key = self.column(&inner.cols, Int).expect("every table has an integer column");
        let filter = self.predicate(&inner.cols, 1, false);
        match self.rng.below(4) {
            0 => format!("{outer} IN (SELECT {key} FROM {} WHERE {filter})", inner.sql),
            1 => format!("{outer} NOT IN (SELECT {key} FROM {} WHERE {filter})", inner.sql),
            2 => {
                let not = if self.rng.chance(30) { "NOT " } else { "" };
                format!("{not}EXISTS (SELECT 1 FROM {} WHERE {key} = {outer} AND {filter})", inner.sql)
            }
            _ => {
                let agg = self.rng.pick(&["max", "min", "avg", "count"]);
                format!(
                    "{outer} {} (SELECT {agg}({key}) FROM {} WHERE {filter})",
                    self.rng.pick(&["<", ">=", "="]),
                    inner.sql
                )
            }
        }
    }

    /// Output expressions of `types`, aliased c0, c1, …
    fn items(&mut self, scope: &[Col], types: &[Ty]) -> Vec<String> {
        types.iter().enumerate().map(|(i, ty)| format!("{} AS c{i}", self.expr(scope, *ty, 2))).collect()
    }

    fn output_types(&mut self, scope: &[Col], n: usize) -> Vec<Ty> {
        (0..n)
            .map(|_| {
                // whole nested values now and then, to compare how they print
                let nested: Vec<Ty> =
                    scope.iter().map(|c| c.ty).filter(|t| matches!(t, StrList | IntList | Struct)).collect();
                if !nested.is_empty() && self.rng.chance(15) {
                    *self.rng.pick(&nested)
                } else {
                    *self.rng.pick(&SCALARS)
                }
            })
            .collect()
    }

    /// `ORDER BY` every output column (so ties cannot differ) and a LIMIT, or nothing.
    fn order_limit(&mut self, columns: usize, types: Option<&[Ty]>) -> (String, bool) {
        if !self.rng.chance(45) {
            return (String::new(), false);
        }
        let sortable = |i: &usize| types.is_none_or(|t| !matches!(t[*i], StrList | IntList | Struct));
        let keys: Vec<String> = (0..columns)
            .filter(sortable)
            .map(|i| {
                let dir = if self.rng.chance(30) { " DESC" } else { "" };
                let nulls = if self.rng.chance(50) { "FIRST" } else { "LAST" };
                format!("{}{dir} NULLS {nulls}", i + 1)
            })
            .collect();
        if keys.len() < columns {
            return (String::new(), false);
        }
        (format!(" ORDER BY {} LIMIT {}", keys.join(", "), 1 + self.rng.below(40)), true)
    }

    fn where_clause(&mut self, scope: &[Col]) -> String {
        if self.rng.chance(70) { format!(" WHERE {}", self.predicate(scope, 2, true)) } else { String::new() }
    }

    fn select(&mut self) -> Query {
        let joins = self.joins();
        let from = self.from(joins);
        let count = 1 + self.rng.below(4);
        let types = self.output_types(&from.cols, count);
        let items = self.items(&from.cols, &types);
        let distinct = if self.rng.chance(15) { "DISTINCT " } else { "" };
        let filter = self.where_clause(&from.cols);
        let (order, ordered) = self.order_limit(types.len(), Some(&types));
        Query { sql: format!("SELECT {distinct}{} FROM {}{filter}{order}", items.join(", "), from.sql), ordered }
    }

    fn aggregate_call(&mut self, scope: &[Col]) -> String {
        match self.rng.below(9) {
            0 => "count(*)".into(),
            1 => format!("count({})", self.expr_of(scope, &SCALARS, 1)),
            2 => format!("count(DISTINCT {})", self.expr_of(scope, &KEYS, 1)),
            3 => format!("sum({})", self.expr_of(scope, &[Int, Dec, Float], 1)),
            4 => format!("avg({})", self.expr_of(scope, &[Int, Dec, Float], 1)),
            5 => format!("min({})", self.expr_of(scope, &SCALARS[..6], 1)),
            6 => format!("max({})", self.expr_of(scope, &SCALARS[..6], 1)),
            7 => format!("{}({})", self.rng.pick(&["bool_and", "bool_or"]), self.predicate(scope, 0, false)),
            _ => format!("stddev_samp({})", self.expr_of(scope, &[Int, Float], 1)),
        }
    }

    fn aggregate(&mut self) -> Query {
        let joins = self.joins();
        let from = self.from(joins);
        let mut keys: Vec<String> = vec![];
        for _ in 0..self.rng.below(3) {
            let key = self.expr_of(&from.cols, &KEYS, 1);
            // DataFusion names CAST(x AS T) after x, and one GROUP BY cannot hold two keys of one
            // name (tests/known-differences.md)
            let named_alike =
                |a: &str, b: &str| a == b || a.contains(&format!("({b} AS")) || b.contains(&format!("({a} AS"));
            if !keys.iter().any(|k| named_alike(k, &key)) {
                keys.push(key);
            }
        }
        let mut items: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("{k} AS c{i}")).collect();
        let mut calls: Vec<String> = vec![];
        for _ in 0..1 + self.rng.below(3) {
            let call = self.aggregate_call(&from.cols);
            // max(x) and max(CAST(x AS …)) share DataFusion's name (tests/known-differences.md)
            if !calls.iter().any(|c| cast_free(c) == cast_free(&call)) {
                items.push(format!("{call} AS c{}", items.len()));
                calls.push(call);
            }
        }
        let filter = self.where_clause(&from.cols);
        let group = if keys.is_empty() { String::new() } else { format!(" GROUP BY {}", keys.join(", ")) };
        let having = if self.rng.chance(25) {
            let call = match self.rng.below(3) {
                0 => "count(*)".to_string(),
                1 => format!("sum({})", self.expr(&from.cols, Int, 1)),
                _ => format!("count(DISTINCT {})", self.expr_of(&from.cols, &KEYS, 1)),
            };
            format!(" HAVING {call} > {}", self.rng.below(5))
        } else {
            String::new()
        };
        let (order, ordered) = self.order_limit(items.len(), None);
        Query { sql: format!("SELECT {} FROM {}{filter}{group}{having}{order}", items.join(", "), from.sql), ordered }
    }

    fn window(&mut self) -> Query {
        let t = self.rng.pick(&TABLES);
        let from = self.scan(t);
        let alias = &from.tables[0].1;
        let key: Vec<String> = t.key.iter().map(|k| format!("{alias}.{k}")).collect();
        let order_key = key.join(", ");
        let mut items: Vec<String> = key.iter().enumerate().map(|(i, k)| format!("{k} AS c{i}")).collect();
        for _ in 0..1 + self.rng.below(3) {
            let part = match self.rng.below(3) {
                0 => String::new(),
                // a column, not a constant: see tests/known-differences.md
                _ => format!("PARTITION BY {}", self.column_of(&from.cols, &KEYS)),
            };
            // a column: DataFusion fails windows ordered by sqrt() or ln() (tests/known-differences.md)
            let num = self.column_of(&from.cols, &[Int, Float, Dec]);
            let call = match self.rng.below(8) {
                0 => format!("row_number() OVER ({part} ORDER BY {order_key})"),
                1 => format!("rank() OVER ({part} ORDER BY {num} NULLS FIRST)"),
                2 => format!("dense_rank() OVER ({part} ORDER BY {num} DESC NULLS LAST)"),
                3 => format!("sum({num}) OVER ({part})"),
                4 => format!("count(*) OVER ({part})"),
                5 => format!("lag({num}, 1) OVER ({part} ORDER BY {order_key})"),
                6 => format!("avg({num}) OVER ({part} ORDER BY {order_key} ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)"),
                _ => format!("first_value({num}) OVER ({part} ORDER BY {order_key})"),
            };
            items.push(format!("{call} AS c{}", items.len()));
        }
        let filter = if self.rng.chance(50) {
            format!(" WHERE {}", self.predicate(&from.cols, 1, false))
        } else {
            String::new()
        };
        let (order, ordered) = self.order_limit(items.len(), None);
        Query { sql: format!("SELECT {} FROM {}{filter}{order}", items.join(", "), from.sql), ordered }
    }

    fn set_operation(&mut self) -> Query {
        let n = 1 + self.rng.below(3);
        let types: Vec<Ty> = (0..n).map(|_| *self.rng.pick(&SCALARS)).collect();
        let side = |g: &mut Self| {
            let joins = *g.rng.pick(&[0, 0, 1]);
            let from = g.from(joins);
            let items = g.items(&from.cols, &types);
            let filter =
                if g.rng.chance(60) { format!(" WHERE {}", g.predicate(&from.cols, 1, false)) } else { String::new() };
            format!("SELECT {} FROM {}{filter}", items.join(", "), from.sql)
        };
        let (a, b) = (side(self), side(self));
        let op = self.rng.pick(&["UNION ALL", "UNION", "INTERSECT", "EXCEPT"]);
        let (order, ordered) = self.order_limit(n, Some(&types));
        Query { sql: format!("{a} {op} {b}{order}"), ordered }
    }

    /// A CTE aggregated on a join key, joined back to a table.
    fn with_cte(&mut self) -> Query {
        let &(a, ac, b, bc) = self.rng.pick(&EDGES);
        let inner = self.scan(table(a));
        let ia = inner.tables[0].1.clone();
        let agg = self.aggregate_call(&inner.cols);
        let filter = self.where_clause(&inner.cols);
        let cte =
            format!("SELECT {ia}.{ac} AS k, {agg} AS v, count(*) AS n FROM {}{filter} GROUP BY {ia}.{ac}", inner.sql);
        let outer = self.scan(table(b));
        let oa = outer.tables[0].1.clone();
        let mut scope = outer.cols.clone();
        scope.push(Col { sql: "w.n".into(), ty: Int });
        let count = 1 + self.rng.below(3);
        let types = self.output_types(&outer.cols, count);
        let mut items = self.items(&scope, &types);
        items.push(format!("w.v AS c{}", items.len()));
        let kind = self.rng.pick(&["JOIN", "LEFT JOIN"]);
        let filter =
            if self.rng.chance(50) { format!(" WHERE {}", self.predicate(&scope, 1, false)) } else { String::new() };
        let mut all_types = types.clone();
        all_types.push(Int);
        let (order, ordered) = self.order_limit(items.len(), Some(&all_types));
        Query {
            sql: format!(
                "WITH w AS ({cte}) SELECT {} FROM {} {kind} w ON w.k = {oa}.{bc}{filter}{order}",
                items.join(", "),
                outer.sql
            ),
            ordered,
        }
    }

    fn scalar_subquery(&mut self) -> Query {
        let from = self.from(0);
        let inner = self.scan_any();
        let num = self.expr_of(&inner.cols, &[Int, Float, Dec], 1);
        let agg = self.rng.pick(&["max", "min", "sum", "count"]);
        let sub = format!("(SELECT {agg}({num}) FROM {})", inner.sql);
        let count = 1 + self.rng.below(2);
        let types = self.output_types(&from.cols, count);
        let mut items = self.items(&from.cols, &types);
        items.push(format!("{sub} AS c{}", items.len()));
        let filter = self.where_clause(&from.cols);
        let mut all = types.clone();
        all.push(Int);
        let (order, ordered) = self.order_limit(items.len(), Some(&all));
        Query { sql: format!("SELECT {} FROM {}{filter}{order}", items.join(", "), from.sql), ordered }
    }
}
