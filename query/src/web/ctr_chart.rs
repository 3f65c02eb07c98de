//! The promo CTR chart: each day's click-through rate as a line with its 95 % Wilson interval
//! as a band, drawn as SVG from the promo analytics timeline (`/api/v1/promo/chart.svg`).

use crate::promo::analytics::Day;
use plotters::prelude::*;

const LINE: RGBColor = RGBColor(37, 99, 235);
const BAND: RGBColor = RGBColor(191, 219, 254);

/// The CTR (in percent) of each day in `days`, with its interval, as an SVG document of
/// `width` × `height` pixels named `title`.
pub fn render(days: &[Day], width: u32, height: u32, title: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let _ = draw(&root, days);
        let _ = root.present();
    }
    super::chart::titled(svg, title)
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    days: &[Day],
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    // Days with recipients: a CTR of a day without sends is not 0, it does not exist.
    let points: Vec<(i32, &Day)> = days
        .iter()
        .enumerate()
        .filter(|(_, d)| d.figures.impressions > 0)
        .map(|(i, d)| (i as i32, d))
        .collect();
    let n = days.len().max(1) as i32;
    let top = points
        .iter()
        .map(|(_, d)| d.figures.ctr_high * 100.0)
        .fold(0.0, f64::max)
        .max(0.1)
        * 1.1;
    let font = ("sans-serif", 12).into_font().color(&RGBColor(71, 85, 105));
    let labels: Vec<String> = days
        .iter()
        .map(|d| d.date.get(5..).unwrap_or(&d.date).to_string())
        .collect();
    let label_of = |i: &i32| labels.get(*i as usize).cloned().unwrap_or_default();
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(48)
        .build_cartesian_2d(-1..n, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(241, 245, 249))
        .bold_line_style(RGBColor(226, 232, 240))
        .x_labels(8.min(n as usize))
        .x_label_formatter(&label_of)
        .y_labels(5)
        .y_label_formatter(&|v: &f64| format!("{v:.2}%"))
        .label_style(font.clone())
        .draw()?;
    for (i, d) in &points {
        let (lo, hi) = (d.figures.ctr_low * 100.0, d.figures.ctr_high * 100.0);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*i, lo), (*i, hi)],
            BAND.stroke_width(6),
        )))?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0, 0.0), (0, 0.0)],
            BAND.stroke_width(6),
        )))?
        .label("95 % interval")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BAND.stroke_width(6)));
    chart
        .draw_series(
            LineSeries::new(
                points.iter().map(|(i, d)| (*i, d.figures.ctr * 100.0)),
                LINE.stroke_width(2),
            )
            .point_size(3),
        )?
        .label("CTR (unique clicks ÷ recipients)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], LINE.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(RGBColor(226, 232, 240))
        .label_font(font)
        .draw()?;
    if points.is_empty() {
        super::chart::centred_note(root, "No sends in this period")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promo::analytics::Figures;

    fn day(date: &str, impressions: u64, unique: u64) -> Day {
        let mut figures = Figures {
            impressions,
            unique_clicks: unique,
            ..Figures::default()
        };
        figures.finish();
        Day {
            date: date.into(),
            figures,
        }
    }

    #[test]
    fn draws_the_ctr_with_its_interval() {
        let svg = render(
            &[
                day("2026-11-29", 1000, 50),
                day("2026-11-30", 0, 0),
                day("2026-12-01", 1000, 80),
            ],
            600,
            240,
            "CTR",
        );
        assert!(
            svg.starts_with("<svg") && svg.contains("<title>CTR</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("95 % interval") && svg.contains("12-01"),
            "{svg}"
        );
        let empty = render(&[], 600, 240, "CTR");
        assert!(empty.contains("No sends in this period"), "{empty}");
    }
}
