//! Line charts over time as inline SVG, drawn in Rust so that the HTML report needs no script and no network.
//!
//! A chart is a fixed-size `viewBox` that CSS scales to its column: axes with "nice" ticks (1, 2 or 5 × 10ⁿ), a
//! light grid, and one `<polyline>` per series. Every element carries a `data-` hook (`data-chart`,
//! `data-series`, `data-points`) so that tests can check what was drawn without reading pixels.

use std::fmt::Write as _;

use super::html::esc;

/// The series colours: Tableau 10, distinct for the usual kinds of colour blindness and on white.
pub const PALETTE: [&str; 8] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

/// One line of a chart.
pub struct Series {
    /// The legend label.
    pub label: String,
    /// A CSS colour.
    pub color: &'static str,
    /// (second, value) points, in time order.
    pub points: Vec<(f64, f64)>,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// A stable id, the `data-chart` hook.
    pub id: &'a str,
    /// What the chart shows, for the accessible name.
    pub title: &'a str,
    /// The unit of the y axis (`req/s`, `ms`, `users`).
    pub unit: &'a str,
    /// The last second of the run, so that every chart shares one time axis.
    pub t_max: f64,
    /// The lines.
    pub series: Vec<Series>,
}

/// An x axis other than time: its unit, the series drawn as dots (measurements) rather than lines, and labelled
/// vertical marks (a boundary between two steps, say).
pub struct XAxis<'a> {
    /// The unit of the x axis (`users`, `tasks/s`).
    pub unit: &'a str,
    /// Indices into [`Chart::series`] drawn as dots.
    pub dots: Vec<usize>,
    /// `(label, x)`: a dashed vertical line at x.
    pub marks: Vec<(String, f64)>,
    /// `(x, label)`: tick labels to draw instead of numbers (commits, say); empty for numbers.
    pub labels: Vec<(f64, String)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 34.0;

/// A step of 1, 2 or 5 × 10ⁿ that cuts `span` into about `parts`.
fn nice_step(span: f64, parts: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / parts;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw);
    step.unwrap_or(10.0 * magnitude)
}

/// A tick label: as few decimals as the step needs.
fn tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    format!("{v:.decimals$}")
}

/// A time tick: seconds, or minutes and seconds on long runs.
fn time_tick(t: f64) -> String {
    let s = t.round() as u64;
    if s >= 120 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

impl Chart<'_> {
    /// The `<svg>` element.
    pub fn render(&self) -> String {
        self.render_over(None)
    }

    /// The `<svg>` element, over time (`None`, with `t_max` as the axis' end) or over `axis`.
    pub fn render_over(&self, axis: Option<&XAxis<'_>>) -> String {
        let y_data = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::max);
        let y_step = nice_step(y_data, 4.0);
        let y_max = ((y_data / y_step).ceil() * y_step).max(y_step);
        let t_max = self.t_max.max(1.0);
        let t_step = nice_step(t_max, 6.0).max(1.0);
        let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let x = |t: f64| LEFT + t / t_max * plot_w;
        let y = |v: f64| TOP + plot_h - v / y_max * plot_h;

        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg class="chart" data-chart="{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
            esc(self.id),
            esc(self.title)
        );
        svg.push_str(r#"<g class="grid">"#);
        let mut v = 0.0;
        while v <= y_max + y_step / 2.0 {
            let _ = write!(
                svg,
                r#"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}"/><text class="ylabel" x="{:.1}" y="{:.1}">{}</text>"#,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y(v) + 4.0,
                tick(v, y_step),
                py = y(v),
            );
            v += y_step;
        }
        let labels = axis.map(|a| a.labels.as_slice()).unwrap_or_default();
        for (at, label) in labels {
            let _ = write!(
                svg,
                r#"<text class="xlabel" x="{:.1}" y="{:.1}">{}</text>"#,
                x(*at),
                TOP + plot_h + 19.0,
                esc(label)
            );
        }
        let mut t = if labels.is_empty() { 0.0 } else { f64::INFINITY };
        while t <= t_max + 1e-9 {
            let _ = write!(
                svg,
                r#"<line class="xtick" x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}"/><text class="xlabel" x="{px:.1}" y="{:.1}">{}</text>"#,
                TOP + plot_h,
                TOP + plot_h + 5.0,
                TOP + plot_h + 19.0,
                axis.map_or_else(|| time_tick(t), |_| tick(t, t_step)),
                px = x(t),
            );
            t += t_step;
        }
        let _ = write!(
            svg,
            r#"</g><text class="unit" x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT - 6.0,
            TOP - 12.0,
            esc(self.unit)
        );
        svg.push_str(r#"<g class="axes">"#);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}"/><line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/></g>"#,
            TOP + plot_h,
            WIDTH - RIGHT,
            TOP + plot_h,
            TOP + plot_h
        );
        if let Some(axis) = axis {
            let _ = write!(
                svg,
                r#"<text class="unit" x="{:.1}" y="{:.1}">{}</text>"#,
                WIDTH - RIGHT,
                HEIGHT - 2.0,
                esc(axis.unit)
            );
            for (label, at) in &axis.marks {
                let _ = write!(
                    svg,
                    r##"<g class="mark" data-mark="{}"><line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{:.1}" stroke="#cf222e" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}">{}</text></g>"##,
                    esc(label),
                    TOP + plot_h,
                    x(*at) + 4.0,
                    TOP + 12.0,
                    esc(label),
                    px = x(*at),
                );
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            if axis.is_some_and(|a| a.dots.contains(&i)) {
                let _ =
                    write!(svg, r#"<g class="dots" data-series="{}" data-points="{}">"#, esc(&s.label), s.points.len());
                for &(t, v) in &s.points {
                    let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#, x(t), y(v), s.color);
                }
                svg.push_str("</g>");
                continue;
            }
            let points: Vec<String> = s.points.iter().map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v))).collect();
            let _ = write!(
                svg,
                r#"<polyline class="series" data-series="{}" data-points="{}" points="{}" stroke="{}"/>"#,
                esc(&s.label),
                points.len(),
                points.join(" "),
                s.color
            );
            // Markers where a line would be too short to see.
            if s.points.len() <= 3 {
                for &(t, v) in &s.points {
                    let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#, x(t), y(v), s.color);
                }
            }
        }
        if self.series.iter().all(|s| s.points.is_empty()) {
            let _ = write!(
                svg,
                r#"<text class="empty" x="{:.1}" y="{:.1}">no data</text>"#,
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(nice_step(0.3, 4.0), 0.1);
        assert_eq!(nice_step(0.0, 4.0), 1.0);
        assert_eq!(tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(time_tick(150.0), "2m30s");
    }

    #[test]
    fn draws_a_polyline_per_series_inside_the_plot() {
        let chart = Chart {
            id: "rps",
            title: "Requests <per> second",
            unit: "req/s",
            t_max: 9.0,
            series: vec![Series {
                label: "GET /a".into(),
                color: PALETTE[0],
                points: (0..10).map(|t| (t as f64, (t * 10) as f64)).collect(),
            }],
        };
        let svg = chart.render();
        assert!(svg.starts_with(r#"<svg class="chart" data-chart="rps""#), "{svg}");
        assert!(svg.contains(r#"aria-label="Requests &lt;per&gt; second""#));
        assert!(svg.contains(r#"data-series="GET /a" data-points="10""#));
        let points = svg.split("points=\"").nth(2).unwrap().split('"').next().unwrap();
        for p in points.split(' ') {
            let (px, py) = p.split_once(',').unwrap();
            let (px, py): (f64, f64) = (px.parse().unwrap(), py.parse().unwrap());
            assert!((LEFT..=WIDTH - RIGHT).contains(&px) && (TOP..=HEIGHT - BOTTOM).contains(&py), "{p}");
        }
        assert!(!svg.contains("no data"));
    }

    #[test]
    fn draws_over_a_load_axis_with_dots_marks_and_labels() {
        let series = |label: &str| Series {
            label: label.into(),
            color: PALETTE[0],
            points: vec![(1.0, 10.0), (16.0, 80.0), (32.0, 90.0), (64.0, 70.0)],
        };
        let chart = Chart {
            id: "x",
            title: "Throughput",
            unit: "req/s",
            t_max: 64.0,
            series: vec![series("fit"), series("measured")],
        };
        let axis =
            XAxis { unit: "users", dots: vec![1], marks: vec![("SLO boundary".into(), 16.0)], labels: Vec::new() };
        let svg = chart.render_over(Some(&axis));
        assert!(svg.contains(r#"<polyline class="series" data-series="fit" data-points="4""#), "{svg}");
        assert!(svg.contains(r#"<g class="dots" data-series="measured" data-points="4">"#), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(r#"data-mark="SLO boundary""#) && svg.contains(">users</text>"), "{svg}");
        // Numbers on the x axis, not seconds.
        assert!(svg.contains(">20</text>") && !svg.contains(">20s</text>"), "{svg}");
        let labelled = XAxis { unit: "commit", dots: vec![], marks: vec![], labels: vec![(0.0, "ab12cd3".into())] };
        let svg = chart.render_over(Some(&labelled));
        assert!(svg.contains(">ab12cd3</text>") && !svg.contains(r#"class="xtick""#), "{svg}");
    }
}
