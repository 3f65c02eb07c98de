//! The dashboards' charts, drawn on the server as SVG with the `plotters` crate from the
//! chart API's buckets: `traffic` (clicks and unique clicks) and `conversions` (conversions,
//! with the revenue of the period's main currency on a second axis).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

/// Which chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Clicks and unique clicks.
    Traffic,
    /// Conversions and revenue.
    Conversions,
}

const CLICKS: RGBColor = RGBColor(37, 99, 235);
const UNIQUES: RGBColor = RGBColor(14, 165, 233);
const CONVERSIONS: RGBColor = RGBColor(22, 163, 74);
const REVENUE: RGBColor = RGBColor(217, 119, 6);

fn label(bucket: &str, interval: &str) -> String {
    // `2026-11-30T00:00:00+01:00`: the date for days, the hour for hours.
    if interval == "hour" {
        bucket.get(11..16).unwrap_or(bucket).to_string()
    } else {
        bucket.get(5..10).unwrap_or(bucket).to_string()
    }
}

/// The main currency of a chart answer: the one with the most revenue over the period.
fn main_currency(series: &[Value]) -> Option<String> {
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    for b in series {
        for r in b["revenue"].as_array().into_iter().flatten() {
            if let Some(c) = r["currency"].as_str() {
                *totals.entry(c.to_string()).or_default() +=
                    r["amount_minor"].as_i64().unwrap_or(0);
            }
        }
    }
    totals.into_iter().max_by_key(|(_, v)| *v).map(|(c, _)| c)
}

/// Renders `chart` (an answer of `/api/v1/stats/chart`) as an SVG document of `width` ×
/// `height` pixels, with `title` for screen readers.
pub fn render(chart: &Value, kind: Kind, width: u32, height: u32, title: &str) -> String {
    let empty = Vec::new();
    let series = chart["series"].as_array().unwrap_or(&empty);
    let interval = chart["interval"].as_str().unwrap_or("day");
    let n = series.len().max(1);
    let get = |b: &Value, k: &str| b[k].as_i64().unwrap_or(0);
    let currency = main_currency(series);
    let revenue = |b: &Value| -> f64 {
        let minor = b["revenue"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["currency"].as_str() == currency.as_deref())
            .map(|r| r["amount_minor"].as_i64().unwrap_or(0))
            .sum::<i64>();
        let digits = currency
            .as_deref()
            .map(clicktrail_schemas::money::minor_digits)
            .unwrap_or(2);
        minor as f64 / 10f64.powi(digits as i32)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let _ = draw(
            &root,
            series,
            interval,
            n,
            kind,
            &get,
            &revenue,
            currency.as_deref(),
        );
        let _ = root.present();
    }
    titled(svg, title)
}

/// `svg` with `title` as its accessible name (`aria-label` and a `<title>` element).
pub(crate) fn titled(svg: String, title: &str) -> String {
    let escaped = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    match svg.find('>') {
        Some(i) => {
            let (head, tail) = svg.split_at(i + 1);
            format!(
                "{} role=\"img\" aria-label=\"{escaped}\">{}<title>{escaped}</title>{}",
                &head[..head.len() - 1],
                "",
                tail
            )
        }
        None => svg,
    }
}

/// A whole number with thousands separated by commas: `12,345`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    series: &[Value],
    interval: &str,
    n: usize,
    kind: Kind,
    get: &dyn Fn(&Value, &str) -> i64,
    revenue: &dyn Fn(&Value) -> f64,
    currency: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (a, b, colors, names) = match kind {
        Kind::Traffic => (
            "clicks",
            "unique_clicks",
            (CLICKS, UNIQUES),
            ("Clicks", "Unique clicks"),
        ),
        Kind::Conversions => (
            "conversions",
            "",
            (CONVERSIONS, REVENUE),
            ("Conversions", "Revenue"),
        ),
    };
    let ymax = series
        .iter()
        .map(|s| get(s, a).max(if b.is_empty() { 0 } else { get(s, b) }))
        .max()
        .unwrap_or(0)
        .max(1);
    let rmax = series.iter().map(revenue).fold(0.0, f64::max).max(1.0);
    let labels: Vec<String> = series
        .iter()
        .map(|s| label(s["bucket"].as_str().unwrap_or_default(), interval))
        .collect();
    let font = ("sans-serif", 12).into_font().color(&RGBColor(71, 85, 105));
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(40)
        .right_y_label_area_size(if kind == Kind::Conversions { 52 } else { 0 })
        .build_cartesian_2d(0..n as i32, 0..(ymax + ymax / 10 + 1) as i32)?
        .set_secondary_coord(0..n as i32, 0.0..rmax * 1.1);
    let label_of = |i: &i32| labels.get(*i as usize).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(241, 245, 249))
        .bold_line_style(RGBColor(226, 232, 240))
        .x_labels(8.min(n))
        .x_label_formatter(&label_of)
        .y_labels(5)
        .y_label_formatter(&|v: &i32| grouped(i64::from(*v)))
        .label_style(font.clone())
        .draw()?;
    // Points as well as lines: a period of one bucket still shows its figure.
    let first = series
        .iter()
        .enumerate()
        .map(|(i, s)| (i as i32, get(s, a) as i32));
    chart
        .draw_series(LineSeries::new(first, colors.0.stroke_width(2)).point_size(2))?
        .label(names.0)
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 16, y)], colors.0.stroke_width(2))
        });
    match kind {
        Kind::Traffic => {
            let second = series
                .iter()
                .enumerate()
                .map(|(i, s)| (i as i32, get(s, b) as i32));
            chart
                .draw_series(LineSeries::new(second, colors.1.stroke_width(2)).point_size(2))?
                .label(names.1)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colors.1.stroke_width(2))
                });
        }
        Kind::Conversions => {
            let money = |v: &f64| grouped(v.round() as i64);
            chart
                .configure_secondary_axes()
                .y_labels(5)
                .y_label_formatter(&money)
                .label_style(font.clone())
                .draw()?;
            let rev = series
                .iter()
                .enumerate()
                .map(|(i, s)| (i as i32, revenue(s)));
            let name = format!("{} {}", names.1, currency.unwrap_or("(none)"));
            chart
                .draw_secondary_series(
                    LineSeries::new(rev, colors.1.stroke_width(2)).point_size(2),
                )?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colors.1.stroke_width(2))
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(RGBColor(226, 232, 240))
        .label_font(font)
        .draw()?;
    if series.is_empty() {
        centred_note(root, "No data in this period")?;
    }
    Ok(())
}

/// Writes `text` in the middle of `root`: what a chart without data says instead.
pub(crate) fn centred_note(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    text: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        text,
        (w as i32 / 2, h as i32 / 2),
        ("sans-serif", 14)
            .into_font()
            .color(&RGBColor(100, 116, 139))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_both_charts_as_svg_with_their_names() {
        let chart = json!({"interval": "day", "series": [
            {"bucket": "2026-11-29T00:00:00+01:00", "clicks": 10, "unique_clicks": 7, "conversions": 2,
             "revenue": [{"currency": "EUR", "amount_minor": 4999}]},
            {"bucket": "2026-11-30T00:00:00+01:00", "clicks": 4, "unique_clicks": 4, "conversions": 0, "revenue": []},
        ]});
        let svg = render(&chart, Kind::Traffic, 600, 240, "Traffic <7 days>");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(
            svg.contains("<title>Traffic &lt;7 days&gt;</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("Unique clicks") && svg.contains("11-29"),
            "{svg}"
        );
        let svg = render(&chart, Kind::Conversions, 600, 240, "Conversions");
        assert!(svg.contains("Revenue EUR"), "{svg}");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-1000), "-1,000");
        assert_eq!(grouped(999), "999");
        let empty = render(&json!({"series": []}), Kind::Traffic, 600, 240, "x");
        assert!(empty.contains("No data in this period"), "{empty}");
    }
}
