//! Charts for the bench and eval tools, drawn with plotters as SVG: recall against QPS
//! (`bench ann`), a latency histogram (`bench load`), a metric per setting (`eval`).
//!
//! Only SVG: its text is laid out by whatever views the file, so drawing needs no font files or
//! font libraries on the machine (a PNG would need a TrueType font to rasterise its labels).
use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;

const SIZE: (u32, u32) = (960, 600);

fn check_svg(path: &Path) -> anyhow::Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(()),
        _ => bail!(
            "{}: charts are written as SVG (no fonts needed to draw them); name the file *.svg",
            path.display()
        ),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e:?}")
}

/// Pads a range so points do not sit on the frame; a single value gets a range around it.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return 0.0..1.0;
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = hi.abs().max(1.0) * 0.05;
        return (lo - d)..(hi + d);
    }
    (lo - span * 0.05)..(hi + span * 0.05)
}

/// One line per series through its (x, y) points, with the points marked.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    check_svg(path)?;
    let points = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(padded(x0, x1), padded(y0, y1))
        .map_err(err)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(err)?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// A histogram of `values` in `bins` equal bins between their minimum and maximum.
pub fn histogram(
    path: &Path,
    title: &str,
    x_label: &str,
    values: &[f64],
    bins: usize,
) -> anyhow::Result<()> {
    check_svg(path)?;
    if values.is_empty() {
        bail!("nothing to plot: no values");
    }
    let lo = values.iter().copied().fold(f64::MAX, f64::min);
    let hi = values.iter().copied().fold(f64::MIN, f64::max);
    let bins = bins.max(1);
    let width = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0u64; bins];
    for &v in values {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(lo..(lo + width * bins as f64), 0f64..top * 1.05)
        .map_err(err)?;
    chart.configure_mesh().x_desc(x_label).y_desc("count").draw().map_err(err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x = lo + width * i as f64;
            Rectangle::new([(x, 0.0), (x + width, c as f64)], BLUE.mix(0.6).filled())
        }))
        .map_err(err)?;
    root.present().with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// One horizontal bar per (label, value), in the given order.
pub fn bars(
    path: &Path,
    title: &str,
    value_label: &str,
    rows: &[(String, f64)],
) -> anyhow::Result<()> {
    check_svg(path)?;
    if rows.is_empty() {
        bail!("nothing to plot: no rows");
    }
    let top = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let n = rows.len();
    let height = (120 + 40 * n as u32).max(300);
    let root = SVGBackend::new(path, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(8)
        .build_cartesian_2d(0f64..top * 1.15, 0f64..n as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc(value_label)
        .draw()
        .map_err(err)?;
    for (i, (label, v)) in rows.iter().enumerate() {
        // First row at the top.
        let y = (n - 1 - i) as f64;
        let color = Palette99::pick(i).mix(0.7);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.15), (*v, y + 0.85)],
                color.filled(),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{label}: {v:.4}"),
                (top * 0.01, y + 0.5),
                ("sans-serif", 15).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    root.present().with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_files_with_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lines.svg");
        lines(
            &p,
            "recall vs QPS",
            "recall@10",
            "QPS",
            &[("f16".into(), vec![(0.9, 1000.0), (0.99, 500.0)])],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("recall vs QPS") && svg.contains("f16"));

        let p = dir.path().join("hist.svg");
        histogram(&p, "latency", "ms", &[1.0, 2.0, 2.5, 9.0], 10).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("<rect"));

        let p = dir.path().join("bars.svg");
        bars(&p, "NDCG@10", "NDCG", &[("bm25".into(), 0.3), ("model".into(), 0.5)]).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(svg.contains("bm25: 0.3000") && svg.contains("model: 0.5000"));

        assert!(bars(&dir.path().join("x.png"), "t", "v", &[("a".into(), 1.0)]).is_err());
    }
}
