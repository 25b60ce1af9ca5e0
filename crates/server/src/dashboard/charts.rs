//! Charts as SVG, drawn on the server: no chart script, nothing for the CSP to allow, readable
//! without JavaScript. Every chart has a text equivalent beside it (a table) for screen readers;
//! the SVG itself is labelled as an image.

use maud::{Markup, html};

/// Width and height of a chart's drawing area, in SVG units.
const WIDTH: u64 = 480;
const HEIGHT: u64 = 120;
const BASELINE: u64 = 100;

/// A histogram: one bar per bucket, labelled below with `labels` (same length as `counts`).
pub fn histogram(label: &str, labels: &[String], counts: &[u64]) -> Markup {
    let highest = counts.iter().copied().max().unwrap_or(0).max(1);
    let slots = counts.len().max(1) as u64;
    let slot = WIDTH / slots;
    let bar = slot.saturating_sub(4).max(1);
    html! {
        svg class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) {
            title { (label) }
            line class="axis" x1="0" y1=(BASELINE) x2=(WIDTH) y2=(BASELINE) {}
            @for (index, count) in counts.iter().enumerate() {
                @let height = count * (BASELINE - 10) / highest;
                @let x = index as u64 * slot + 2;
                rect class="bar" x=(x) y=(BASELINE - height) width=(bar) height=(height) {
                    title { (labels.get(index).map_or("", String::as_str)) ": " (count) }
                }
                text class="tick" x=(x + bar / 2) y=(HEIGHT - 6) text-anchor="middle" {
                    (labels.get(index).map_or("", String::as_str))
                }
            }
        }
    }
}

/// A series of a timeline: its name, its CSS class and its values (one per point in time).
pub struct Series<'a> {
    /// What it counts.
    pub name: &'a str,
    /// Its class (`l-online`).
    pub class: &'a str,
    /// Values, aligned with the timeline's times.
    pub values: Vec<u64>,
}

/// Lines over time: `times` (Unix seconds, ascending) on the x axis, each series a polyline.
pub fn timeline(label: &str, times: &[i64], series: &[Series<'_>]) -> Markup {
    let first = times.first().copied().unwrap_or(0);
    let span = (times.last().copied().unwrap_or(0) - first).max(1);
    let highest = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let point = |time: i64, value: u64| {
        let x = (time - first).unsigned_abs() * WIDTH / span.unsigned_abs();
        let y = BASELINE - value * (BASELINE - 10) / highest;
        format!("{x},{y}")
    };
    html! {
        svg class="timeline" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) {
            title { (label) }
            line class="axis" x1="0" y1=(BASELINE) x2=(WIDTH) y2=(BASELINE) {}
            text class="tick" x="0" y=(HEIGHT - 6) { (highest) " max" }
            @for line in series {
                polyline class=(line.class) fill="none" points=(
                    times.iter().zip(&line.values).map(|(t, v)| point(*t, *v)).collect::<Vec<_>>().join(" ")
                ) {
                    title { (line.name) }
                }
            }
        }
    }
}

/// One segment of a stacked bar: its name, its count and its CSS class (the colour).
pub struct Segment<'a> {
    /// What it counts.
    pub name: &'a str,
    /// How many.
    pub count: u64,
    /// Its class (`s-active`).
    pub class: &'a str,
}

/// A horizontal bar split in proportion to `segments`; empty segments take no room.
pub fn stacked_bar(label: &str, segments: &[Segment<'_>]) -> Markup {
    let total: u64 = segments.iter().map(|s| s.count).sum::<u64>().max(1);
    let mut x = 0u64;
    let placed: Vec<(u64, u64, &Segment<'_>)> = segments
        .iter()
        .filter(|s| s.count > 0)
        .map(|segment| {
            let width = segment.count * WIDTH / total;
            let at = x;
            x += width;
            (at, width.max(1), segment)
        })
        .collect();
    html! {
        svg class="stacked" viewBox=(format!("0 0 {WIDTH} 20")) preserveAspectRatio="none" role="img" aria-label=(label) {
            title { (label) }
            rect class="track" x="0" y="0" width=(WIDTH) height="20" {}
            @for (at, width, segment) in &placed {
                rect class=(segment.class) x=(at) y="0" width=(width) height="20" {
                    title { (segment.name) ": " (segment.count) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_highest_count_and_labels_are_escaped() {
        let labels = vec!["≤1".to_owned(), "<b>".to_owned()];
        let svg = histogram("latency", &labels, &[5, 10]).into_string();
        assert!(svg.contains("height=\"90\""), "{svg}");
        assert!(svg.contains("height=\"45\""), "{svg}");
        assert!(svg.contains("&lt;b&gt;"), "{svg}");
        let empty = histogram("none", &[], &[]).into_string();
        assert!(empty.contains("aria-label=\"none\""));
    }

    #[test]
    fn timelines_span_the_width_and_scale_to_the_highest_value() {
        let series = [Series {
            name: "enrolled",
            class: "l-enrolled",
            values: vec![2, 4],
        }];
        let svg = timeline("devices", &[100, 200], &series).into_string();
        assert!(svg.contains("points=\"0,55 480,10\""), "{svg}");
    }

    #[test]
    fn stacked_segments_are_proportional_and_empty_ones_left_out() {
        let segments = [
            Segment {
                name: "active",
                count: 3,
                class: "s-active",
            },
            Segment {
                name: "failed",
                count: 0,
                class: "s-failed",
            },
            Segment {
                name: "assigned",
                count: 1,
                class: "s-assigned",
            },
        ];
        let svg = stacked_bar("progress", &segments).into_string();
        assert!(
            svg.contains("class=\"s-active\" x=\"0\" y=\"0\" width=\"360\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"s-assigned\" x=\"360\" y=\"0\" width=\"120\""),
            "{svg}"
        );
        assert!(!svg.contains("s-failed"));
    }
}
