//! Partition projection as Athena defines it: partitions computed from table properties
//! (`projection.<col>.type` integer, date, enum or injected; `storage.location.template`)
//! instead of asked of the catalog. A projected partition with no folder simply has no rows.

use std::collections::{BTreeMap, HashSet};

use chrono::{Duration, Months, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::datatypes::FieldRef;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use glaux_catalog::Table;

use super::pruning;
use crate::error::{Error, Result};

/// More combinations than this is a table definition mistake, not a query.
const MAX_PARTITIONS: usize = 1_000_000;
/// An i64 has at most 19 digits; padding past that is a mistake.
const MAX_DIGITS: i64 = 20;

#[derive(Debug, Clone)]
enum Kind {
    Integer { min: i64, max: i64, interval: i64, digits: usize },
    Date { start: NaiveDateTime, end: NaiveDateTime, format: String, interval: i64, unit: Unit },
    Enum(Vec<String>),
    Injected,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Years,
    Months,
    Weeks,
    Days,
    Hours,
    Minutes,
    Seconds,
}

/// One projected partition: its values in key order and its location.
pub type Projected = (Vec<String>, String);

/// A table's projection: one generator per partition key, and where partitions live.
#[derive(Debug, Clone)]
pub struct Projection {
    table: String,
    kinds: Vec<(String, Kind)>,
    template: Option<String>,
}

impl Projection {
    /// The table's projection, or `None` when `projection.enabled` is not `true`.
    pub fn of(database: &str, table: &Table) -> Result<Option<Self>> {
        let props = &table.parameters;
        if !props.get("projection.enabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let name = format!("{database}.{}", table.name);
        let fail = |m: String| Error::InvalidInput(format!("table {name}: {m}"));
        let mut kinds = vec![];
        for key in &table.partition_keys {
            let col = key.name.to_ascii_lowercase();
            let prop = |p: &str| lookup(props, &format!("projection.{col}.{p}"));
            let kind_name = prop("type").ok_or_else(|| fail(format!("projection.{col}.type is missing")))?;
            let kind = match kind_name.to_ascii_lowercase().as_str() {
                "integer" => integer(&col, prop("range"), prop("interval"), prop("digits")).map_err(fail)?,
                "date" => {
                    date(&col, prop("range"), prop("format"), prop("interval"), prop("interval.unit")).map_err(fail)?
                }
                "enum" => {
                    let values = prop("values").ok_or_else(|| fail(format!("projection.{col}.values is missing")))?;
                    Kind::Enum(values.split(',').map(|v| v.trim().to_string()).collect())
                }
                "injected" => Kind::Injected,
                other => {
                    return Err(fail(format!(
                        "projection.{col}.type '{other}' is not one of integer, date, enum, injected"
                    )));
                }
            };
            kinds.push((col, kind));
        }
        let template = lookup(props, "storage.location.template").map(str::to_string);
        Ok(Some(Self { table: name, kinds, template }))
    }

    /// Checks the whole definition now (at CREATE or ALTER), so a query never meets a mistake:
    /// every range generates within the limits, and a location template names every column.
    pub fn validate(&self) -> Result<()> {
        for (col, kind) in &self.kinds {
            generate(kind).map_err(|e| Error::InvalidInput(format!("table {}: projection.{col}: {e}", self.table)))?;
        }
        if let Some(template) = &self.template {
            if !template.contains("://") && !template.starts_with('/') {
                return Err(Error::InvalidInput(format!(
                    "table {}: storage.location.template '{template}' is not a location (s3://… or a path)",
                    self.table
                )));
            }
            for (col, _) in &self.kinds {
                if !template.contains(&format!("${{{col}}}")) {
                    return Err(Error::InvalidInput(format!(
                        "table {}: storage.location.template '{template}' does not name the partition column ${{{col}}}",
                        self.table
                    )));
                }
            }
        }
        Ok(())
    }

    /// The projected partitions that satisfy `filters` (partition-column conjuncts), as their
    /// values in key order and their locations.
    pub fn partitions(
        &self,
        state: &dyn Session,
        fields: &[FieldRef],
        filters: &[Expr],
        table_location: &str,
    ) -> Result<(Vec<Projected>, usize)> {
        let mut considered = 1usize;
        // each column's candidates, pruned by the conjuncts on that column alone
        let mut per_column: Vec<Vec<String>> = vec![];
        for ((col, kind), field) in self.kinds.iter().zip(fields) {
            let candidates = match kind {
                Kind::Injected => injected(col, filters).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "table {}: for the injected projected partition column {col}, the WHERE clause must contain only static equality conditions on it, and at least one",
                        self.table
                    ))
                })?,
                other => generate(other)?,
            };
            let own: Vec<Expr> = filters
                .iter()
                .filter(|f| pruning::only_partition_columns(f, &HashSet::from([col.clone()])))
                .cloned()
                .collect();
            considered = considered.saturating_mul(candidates.len());
            let rows: Vec<Vec<String>> = candidates.iter().map(|v| vec![v.clone()]).collect();
            let typed = pruning::typed_columns(&self.table, std::slice::from_ref(field), &rows)?;
            let keep = pruning::surviving(state, std::slice::from_ref(field), typed, rows.len(), &own)?;
            per_column.push(keep.into_iter().map(|i| candidates[i].clone()).collect());
        }
        let total = per_column.iter().try_fold(1usize, |acc, c| acc.checked_mul(c.len()));
        if total.is_none_or(|t| t > MAX_PARTITIONS) {
            return Err(Error::InvalidInput(format!(
                "table {}: the query would project more than {MAX_PARTITIONS} partitions; add a filter on {}",
                self.table,
                self.kinds.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut combos: Vec<Vec<String>> = vec![vec![]];
        for values in &per_column {
            combos = combos
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut next = prefix.clone();
                        next.push(v.clone());
                        next
                    })
                })
                .collect();
        }
        // the whole filter, exactly, on the combinations (conditions across columns)
        let typed = pruning::typed_columns(&self.table, fields, &combos)?;
        let keep = pruning::surviving(state, fields, typed, combos.len(), filters)?;
        let kept = keep
            .into_iter()
            .map(|i| {
                let values = combos[i].clone();
                let location = self.location(table_location, &values);
                (values, location)
            })
            .collect();
        Ok((kept, considered))
    }

    fn location(&self, table_location: &str, values: &[String]) -> String {
        match &self.template {
            Some(template) => {
                let mut out = template.clone();
                for ((col, _), v) in self.kinds.iter().zip(values) {
                    out = out.replace(&format!("${{{col}}}"), v);
                }
                if out.ends_with('/') { out } else { format!("{out}/") }
            }
            None => {
                let mut out = table_location.trim_end_matches('/').to_string();
                for ((col, _), v) in self.kinds.iter().zip(values) {
                    out.push_str(&format!("/{col}={v}"));
                }
                out.push('/');
                out
            }
        }
    }
}

/// Property lookup; Athena's property names are case-insensitive in practice.
fn lookup<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    props.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

fn number(col: &str, what: &str, text: &str) -> std::result::Result<i64, String> {
    text.trim().parse().map_err(|_| format!("projection.{col}.{what} '{text}' is not an integer"))
}

fn integer(
    col: &str,
    range: Option<&str>,
    interval: Option<&str>,
    digits: Option<&str>,
) -> std::result::Result<Kind, String> {
    let range = range.ok_or_else(|| format!("projection.{col}.range is missing"))?;
    let (lo, hi) = range.split_once(',').ok_or_else(|| format!("projection.{col}.range '{range}' is not 'min,max'"))?;
    let (min, max) = (number(col, "range", lo)?, number(col, "range", hi)?);
    let interval = interval.map(|i| number(col, "interval", i)).transpose()?.unwrap_or(1);
    if interval <= 0 {
        return Err(format!("projection.{col}.interval must be positive"));
    }
    let digits = digits.map(|d| number(col, "digits", d)).transpose()?.unwrap_or(0);
    if !(0..=MAX_DIGITS).contains(&digits) {
        return Err(format!("projection.{col}.digits must be 0 to {MAX_DIGITS}, not {digits}"));
    }
    let digits = digits as usize;
    Ok(Kind::Integer { min, max, interval, digits })
}

fn date(
    col: &str,
    range: Option<&str>,
    format: Option<&str>,
    interval: Option<&str>,
    unit: Option<&str>,
) -> std::result::Result<Kind, String> {
    let java = format.ok_or_else(|| format!("projection.{col}.format is missing"))?;
    let format = java_to_chrono(java).map_err(|e| format!("projection.{col}.format '{java}': {e}"))?;
    let range = range.ok_or_else(|| format!("projection.{col}.range is missing"))?;
    let (lo, hi) =
        range.split_once(',').ok_or_else(|| format!("projection.{col}.range '{range}' is not 'start,end'"))?;
    let bound = |text: &str| -> std::result::Result<NaiveDateTime, String> {
        let t = bound(text.trim(), &format).ok_or_else(|| {
            format!("projection.{col}.range: '{}' is neither in format '{java}' nor NOW±N<UNIT>", text.trim())
        })?;
        // align to what the format can say, as the values themselves are
        parse_in_format(&t.format(&format).to_string(), &format)
            .ok_or_else(|| format!("projection.{col}.range '{text}'"))
    };
    let (start, end) = (bound(lo)?, bound(hi)?);
    let interval = interval.map(|i| number(col, "interval", i)).transpose()?.unwrap_or(1);
    if interval <= 0 {
        return Err(format!("projection.{col}.interval must be positive"));
    }
    let unit = match unit {
        Some(u) => parse_unit(u).ok_or_else(|| format!("projection.{col}.interval.unit '{u}' is not a time unit"))?,
        None => finest_unit(&format),
    };
    Ok(Kind::Date { start, end, format, interval, unit })
}

fn parse_unit(u: &str) -> Option<Unit> {
    Some(match u.trim().to_ascii_uppercase().trim_end_matches('S') {
        "YEAR" => Unit::Years,
        "MONTH" => Unit::Months,
        "WEEK" => Unit::Weeks,
        "DAY" => Unit::Days,
        "HOUR" => Unit::Hours,
        "MINUTE" => Unit::Minutes,
        "SECOND" => Unit::Seconds,
        _ => return None,
    })
}

/// Without `interval.unit`, a date projection steps by the finest field its format shows.
fn finest_unit(format: &str) -> Unit {
    [("%S", Unit::Seconds), ("%M", Unit::Minutes), ("%H", Unit::Hours), ("%d", Unit::Days), ("%m", Unit::Months)]
        .into_iter()
        .find(|(f, _)| format.contains(f))
        .map(|(_, u)| u)
        .unwrap_or(Unit::Years)
}

fn step(t: NaiveDateTime, n: i64, unit: Unit) -> Option<NaiveDateTime> {
    let months = |m: i64| u32::try_from(m).ok().map(Months::new);
    match unit {
        Unit::Years => t.checked_add_months(months(n * 12)?),
        Unit::Months => t.checked_add_months(months(n)?),
        Unit::Weeks => t.checked_add_signed(Duration::weeks(n)),
        Unit::Days => t.checked_add_signed(Duration::days(n)),
        Unit::Hours => t.checked_add_signed(Duration::hours(n)),
        Unit::Minutes => t.checked_add_signed(Duration::minutes(n)),
        Unit::Seconds => t.checked_add_signed(Duration::seconds(n)),
    }
}

fn step_back(t: NaiveDateTime, n: i64, unit: Unit) -> Option<NaiveDateTime> {
    let months = |m: i64| u32::try_from(m).ok().map(Months::new);
    match unit {
        Unit::Years => t.checked_sub_months(months(n * 12)?),
        Unit::Months => t.checked_sub_months(months(n)?),
        other => step(t, -n, other),
    }
}

/// `NOW`, `NOW-3YEARS`, `NOW+1DAY`, or a date in the projection's format.
fn bound(text: &str, format: &str) -> Option<NaiveDateTime> {
    let upper = text.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix("NOW") else { return parse_in_format(text, format) };
    let now = Utc::now().naive_utc();
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(now);
    }
    // by characters: a sign that is not ASCII (U+2212 '−', say) is refused, not cut in half
    let mut chars = rest.chars();
    let sign = chars.next()?.to_string();
    let rest = chars.as_str();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: i64 = digits.parse().ok()?;
    let unit = parse_unit(&rest[digits.len()..])?;
    match sign.as_str() {
        "+" => step(now, n, unit),
        "-" => step_back(now, n, unit),
        _ => None,
    }
}

/// Parses a value written in `format`, filling the fields a coarse format leaves out.
fn parse_in_format(text: &str, format: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, format)
        .ok()
        // chrono wants minutes beside hours
        .or_else(|| NaiveDateTime::parse_from_str(&format!("{text}|00"), &format!("{format}|%M")).ok())
        .or_else(|| NaiveDate::parse_from_str(text, format).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .or_else(|| {
            NaiveDate::parse_from_str(&format!("{text}|01"), &format!("{format}|%d")).ok()?.and_hms_opt(0, 0, 0)
        })
        .or_else(|| {
            NaiveDate::parse_from_str(&format!("{text}|01|01"), &format!("{format}|%m|%d")).ok()?.and_hms_opt(0, 0, 0)
        })
}

/// Java's DateTimeFormatter patterns (what Athena takes) as chrono's strftime.
fn java_to_chrono(java: &str) -> std::result::Result<String, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // quoted literal; '' is a quote
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                out.push_str(if chars[j] == '%' { "%%" } else { "" });
                if chars[j] != '%' {
                    out.push(chars[j]);
                }
                j += 1;
            }
            if j == i + 1 {
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push_str(if c == '%' { "%%" } else { "" });
            if c != '%' {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        out.push_str(match (c, run) {
            ('y' | 'u', 4) => "%Y",
            ('y' | 'u', 2) => "%y",
            ('M', 2) => "%m",
            ('M', 1) => "%-m",
            ('d', 2) => "%d",
            ('d', 1) => "%-d",
            ('H', 2) => "%H",
            ('H', 1) => "%-H",
            ('m', 2) => "%M",
            ('s', 2) => "%S",
            ('S', 3) => "%3f",
            _ => return Err(format!("'{}' is not a supported pattern", c.to_string().repeat(run))),
        });
        i += run;
    }
    Ok(out)
}

fn generate(kind: &Kind) -> Result<Vec<String>> {
    let too_many = || Error::InvalidInput(format!("a projection range yields more than {MAX_PARTITIONS} values"));
    Ok(match kind {
        Kind::Integer { min, max, interval, digits } => {
            let span = i128::from(*max) - i128::from(*min);
            let count = span.max(-1) / i128::from(*interval) + 1;
            if count > MAX_PARTITIONS as i128 {
                return Err(too_many());
            }
            let count = count as i64;
            (0..count.max(0)).map(|k| format!("{:0digits$}", min + k * interval, digits = *digits)).collect()
        }
        Kind::Date { start, end, format, interval, unit } => {
            let mut out = vec![];
            let mut t = *start;
            while t <= *end {
                if out.len() >= MAX_PARTITIONS {
                    return Err(too_many());
                }
                out.push(t.format(format).to_string());
                match step(t, *interval, *unit) {
                    Some(next) => t = next,
                    None => break,
                }
            }
            out
        }
        Kind::Enum(values) => values.clone(),
        Kind::Injected => vec![],
    })
}

/// The values an injected column is pinned to by `col = v`, `col IN (…)` or ORs of those
/// (DataFusion writes short IN lists as ORs).
fn injected(col: &str, filters: &[Expr]) -> Option<Vec<String>> {
    let mut found: Option<Vec<String>> = None;
    for f in filters {
        let Some(values) = equalities(col, f) else { continue };
        // several conjuncts: the values all of them allow
        found = Some(match found {
            None => values,
            Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }
    found
}

fn equalities(col: &str, expr: &Expr) -> Option<Vec<String>> {
    let literal = |e: &Expr| match e {
        Expr::Literal(v, _) if !v.is_null() => Some(scalar_text(v)),
        _ => None,
    };
    let is_col = |e: &Expr| matches!(e, Expr::Column(c) if c.name == col);
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) if is_col(left) => Some(vec![literal(right)?]),
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) if is_col(right) => Some(vec![literal(left)?]),
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let mut values = equalities(col, left)?;
            values.extend(equalities(col, right)?);
            Some(values)
        }
        Expr::InList(list) if !list.negated && is_col(&list.expr) => list.list.iter().map(literal).collect(),
        _ => None,
    }
}

fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(props: &[(&str, &str)], keys: &[&str]) -> Table {
        Table {
            name: "t".into(),
            partition_keys: keys
                .iter()
                .map(|k| glaux_catalog::Column { name: k.to_string(), type_name: "string".into(), comment: None })
                .collect(),
            parameters: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn integers_pad_and_step() {
        let t = table(
            &[
                ("projection.enabled", "true"),
                ("projection.h.type", "integer"),
                ("projection.h.range", "0,10"),
                ("projection.h.interval", "5"),
                ("projection.h.digits", "2"),
            ],
            &["h"],
        );
        let p = Projection::of("db", &t).unwrap().unwrap();
        assert_eq!(generate(&p.kinds[0].1).unwrap(), ["00", "05", "10"]);
        assert_eq!(p.location("s3://b/t/", &["05".into()]), "s3://b/t/h=05/");
    }

    #[test]
    fn dates_follow_java_formats_and_units() {
        let kind = date("dt", Some("2024/02/27,2024/03/01"), Some("yyyy/MM/dd"), None, None).unwrap();
        assert_eq!(generate(&kind).unwrap(), ["2024/02/27", "2024/02/28", "2024/02/29", "2024/03/01"]);
        let monthly = date("m", Some("2024-11,2025-02"), Some("yyyy-MM"), None, None).unwrap();
        assert_eq!(generate(&monthly).unwrap(), ["2024-11", "2024-12", "2025-01", "2025-02"]);
        let hourly = date("h", Some("2024-01-01-22,2024-01-02-01"), Some("yyyy-MM-dd-HH"), Some("3"), Some("HOURS"));
        assert_eq!(generate(&hourly.unwrap()).unwrap(), ["2024-01-01-22", "2024-01-02-01"]);
        let quoted = java_to_chrono("'year='yyyy'/month='MM").unwrap();
        assert_eq!(quoted, "year=%Y/month=%m");
        let recent = date("d", Some("NOW-2DAYS,NOW"), Some("yyyy-MM-dd"), None, None).unwrap();
        let values = generate(&recent).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[2], Utc::now().format("%Y-%m-%d").to_string());
    }

    #[test]
    fn malformed_definitions_are_refused_at_validation_and_never_panic() {
        // a Unicode minus, as pasted from a document
        let kind = date("d", Some("NOW\u{2212}3YEARS,NOW"), Some("yyyy-MM-dd"), None, None).unwrap_err();
        assert!(kind.contains("projection.d.range") && kind.contains("NOW\u{2212}3YEARS"), "{kind}");
        for (range, digits) in [("-9223372036854775808,9223372036854775807", "1"), ("1,10", "100000000")] {
            let t = table(
                &[
                    ("projection.enabled", "true"),
                    ("projection.h.type", "integer"),
                    ("projection.h.range", range),
                    ("projection.h.digits", digits),
                ],
                &["h"],
            );
            let refused = Projection::of("db", &t).and_then(|p| p.map(|p| p.validate()).transpose());
            let e = refused.unwrap_err().to_string();
            assert!(e.contains("db.t") && e.contains("projection.h"), "{e}");
        }
        let t = table(
            &[
                ("projection.enabled", "true"),
                ("projection.h.type", "enum"),
                ("projection.h.values", "a,b"),
                ("storage.location.template", "s3://b/t/fixed/"),
            ],
            &["h"],
        );
        let e = Projection::of("db", &t).unwrap().unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("storage.location.template") && e.contains("${h}"), "{e}");
    }

    #[test]
    fn mistakes_name_the_property() {
        let e = date("dt", Some("2024-01-01,soon"), Some("yyyy-MM-dd"), None, None).unwrap_err();
        assert!(e.contains("'soon'") && e.contains("yyyy-MM-dd"), "{e}");
        let e = integer("h", Some("1"), None, None).unwrap_err();
        assert!(e.contains("projection.h.range"), "{e}");
        let t = table(&[("projection.enabled", "true"), ("projection.x.type", "hash")], &["x"]);
        let e = Projection::of("db", &t).unwrap_err().to_string();
        assert!(e.contains("db.t") && e.contains("'hash'"), "{e}");
        let off = table(&[("projection.x.type", "hash")], &["x"]);
        assert!(Projection::of("db", &off).unwrap().is_none());
    }

    #[test]
    fn injected_values_come_from_equalities() {
        use datafusion::prelude::{col, lit};
        let filters = vec![col("k").in_list(vec![lit("a"), lit("b")], false), col("k").eq(lit("b"))];
        assert_eq!(injected("k", &filters), Some(vec!["b".to_string()]));
        assert_eq!(injected("k", &[col("k").gt(lit("a"))]), None);
        let ors = col("k").eq(lit("x")).or(col("k").eq(lit("y")));
        assert_eq!(injected("k", &[ors]), Some(vec!["x".to_string(), "y".to_string()]));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{config, shaped};
    use proptest::prelude::*;

    const PATTERNS: &[&str] =
        &["yyyy", "yy", "MM", "M", "dd", "d", "HH", "H", "mm", "ss", "SSS", "-", "/", "'", "''", "%", "T", " ", "u"];

    proptest! {
        #![proptest_config(config())]

        /// A Java pattern glaux takes formats any date (chrono panics on a bad format string).
        #[test]
        fn any_date_pattern_is_refused_or_formats(pattern in prop_oneof![shaped(PATTERNS, 12), "\\PC{0,20}".boxed()]) {
            if let Ok(format) = java_to_chrono(&pattern) {
                let t = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().and_hms_opt(13, 5, 9).unwrap();
                let text = format!("{}", t.format(&format));
                let _ = parse_in_format(&text, &format);
            }
        }

        /// Projection properties of any shape: a projection, or an error naming what is wrong.
        #[test]
        fn any_projection_properties_are_read_or_refused(
            kind in proptest::sample::select(&["integer", "date", "enum", "injected", "bogus", ""][..]),
            range in "\\PC{0,30}",
            extra in proptest::collection::vec(("(format|interval|interval.unit|digits|values)", "\\PC{0,12}"), 0..4),
        ) {
            let mut props = vec![
                ("projection.enabled".to_string(), "true".to_string()),
                ("projection.k.type".to_string(), kind.to_string()),
                ("projection.k.range".to_string(), range),
            ];
            props.extend(extra.into_iter().map(|(k, v)| (format!("projection.k.{k}"), v)));
            let table = Table {
                name: "t".into(),
                partition_keys: vec![glaux_catalog::Column { name: "k".into(), type_name: "string".into(), comment: None }],
                parameters: props.into_iter().collect(),
                ..Default::default()
            };
            if let Ok(Some(p)) = Projection::of("db", &table) {
                for (_, kind) in &p.kinds {
                    let _ = generate(kind);
                }
            }
        }
    }
}
