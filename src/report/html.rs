//! A report as one self-contained HTML page: inline CSS, an inline SVG bar chart of cost per
//! day, and the report's tables. No scripts, fonts or images from anywhere else.

use std::fmt::Write;

use glaux_engine::human_bytes;

use super::compute::{Group, Report};

/// The bars' colour; tests look for it in a rendered screenshot.
pub const BAR_COLOUR: &str = "#2f6fdf";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn dollars(cost: f64) -> String {
    if cost == 0.0 {
        "$0".into()
    } else if cost >= 0.01 {
        format!("${cost:.2}")
    } else {
        format!("${cost:.6}")
    }
}

/// The bar chart of cost per day.
fn chart(daily: &[Group]) -> String {
    const WIDTH: f64 = 900.0;
    const HEIGHT: f64 = 260.0;
    const LEFT: f64 = 80.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 16.0;
    let plot_w = WIDTH - LEFT - 16.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let max = daily.iter().map(|d| d.totals.cost_usd).fold(0.0, f64::max);
    let n = daily.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="cost-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Cost per day">"#
    );
    let base = TOP + plot_h;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#444"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#444"/>"##,
        LEFT + plot_w
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#444">{}</text><text x="{}" y="{base}" text-anchor="end" font-size="12" fill="#444">$0</text>"##,
        LEFT - 6.0,
        TOP + 10.0,
        dollars(max),
        LEFT - 6.0
    );
    if max == 0.0 {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="14" fill="#666">no cost in this period</text>"##,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    // about eight date labels, whatever the span
    let every = daily.len().div_ceil(8).max(1);
    for (i, day) in daily.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        if day.totals.cost_usd > 0.0 {
            // a day with any cost gets at least a visible sliver
            let h = (day.totals.cost_usd / max * plot_h).max(2.0);
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{x:.2}" y="{:.2}" width="{bar:.2}" height="{h:.2}" fill="{BAR_COLOUR}"><title>{}: {} ({} queries, {} scanned)</title></rect>"#,
                base - h,
                day.key,
                dollars(day.totals.cost_usd),
                day.totals.queries,
                human_bytes(day.totals.data_scanned_bytes)
            );
        }
        if i % every == 0 || i + 1 == daily.len() {
            let _ = write!(
                svg,
                r##"<text x="{:.2}" y="{}" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
                x + bar / 2.0,
                base + 18.0,
                day.key
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn table(head: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    let mut any = false;
    for row in rows {
        any = true;
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>");
    }
    if !any {
        let _ = write!(out, r#"<tr><td colspan="{}" class="none">none</td></tr>"#, head.len());
    }
    out.push_str("</tbody></table>");
    out
}

pub fn page(report: &Report) -> String {
    let t = &report.totals;
    let scope = match &report.workgroup {
        Some(w) => format!(" — workgroup {}", escape(w)),
        None => String::new(),
    };
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>glaux scan-cost report {since} to {until}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}}
h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px}}
.cards{{display:flex;gap:16px;flex-wrap:wrap}} .card{{border:1px solid #d5d9e0;border-radius:6px;padding:10px 16px;min-width:130px}}
.card b{{display:block;font-size:20px}} table{{border-collapse:collapse;font-size:13px}}
th,td{{border:1px solid #d5d9e0;padding:4px 8px;text-align:left}} td.num{{text-align:right}} .none{{color:#777}}
</style></head><body>
<h1>Scan-cost report, {since} to {until}{scope}</h1>
<div class="cards"><div class="card">Cost<b>{cost}</b></div><div class="card">Queries<b>{queries}</b></div><div class="card">Scanned<b>{scanned}</b></div><div class="card">Billed<b>{billed}</b></div><div class="card">Failed / cancelled<b>{failed} / {cancelled}</b></div></div>
<h2>Cost per day</h2>
{chart}
"#,
        since = report.since,
        until = report.until,
        cost = dollars(t.cost_usd),
        queries = t.queries,
        scanned = human_bytes(t.data_scanned_bytes),
        billed = human_bytes(t.billed_bytes),
        failed = t.failed,
        cancelled = t.cancelled,
        chart = chart(&report.daily),
    );
    let _ = write!(html, "<h2>By {}</h2>", report.by);
    html.push_str(&table(
        &[&report.by.to_string(), "queries", "succeeded", "failed", "cancelled", "scanned", "billed", "cost"],
        report.groups.iter().map(|g| {
            vec![
                g.key.clone(),
                g.totals.queries.to_string(),
                g.totals.succeeded.to_string(),
                g.totals.failed.to_string(),
                g.totals.cancelled.to_string(),
                human_bytes(g.totals.data_scanned_bytes),
                human_bytes(g.totals.billed_bytes),
                dollars(g.totals.cost_usd),
            ]
        }),
    ));
    html.push_str("<h2>Most expensive queries</h2>");
    html.push_str(&table(
        &["query id", "submitted", "workgroup", "state", "scanned", "cost", "query"],
        report.top_queries.iter().map(|q| {
            vec![
                q.query_execution_id.clone(),
                q.submitted.clone(),
                q.workgroup.clone(),
                q.state.clone(),
                human_bytes(q.data_scanned_bytes),
                dollars(q.cost_usd),
                super::compute::one_line(&q.query, 160),
            ]
        }),
    ));
    html.push_str("<h2>Partition-pruning misses</h2><p>Queries that read every partition of a partitioned table.</p>");
    html.push_str(&table(
        &["query id", "submitted", "table", "partitions", "scanned", "cost", "query"],
        report.pruning_misses.iter().map(|m| {
            vec![
                m.query_execution_id.clone(),
                m.submitted.clone(),
                m.table.clone(),
                m.partitions.to_string(),
                human_bytes(m.data_scanned_bytes),
                dollars(m.cost_usd),
                super::compute::one_line(&m.query, 160),
            ]
        }),
    ));
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"<b>"x" & 'y'</b>"#), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }
}
