//! Hand-written SVG charts for evaluation reports (no plotting crate: two
//! small charts do not justify the dependency).

use std::fmt::Write;

const W: f64 = 480.0;
const H: f64 = 340.0;
const L: f64 = 60.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn frame(out: &mut String, title: &str, xlabel: &str, ylabel: &str, ymax_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>
<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>
<text x="{}" y="{}" text-anchor="end">0</text><text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{L}" y="{}" text-anchor="middle">0</text><text x="{}" y="{}" text-anchor="middle">1</text>
"#,
        W / 2.0,
        esc(title),
        H - B,
        W - R,
        H - B,
        H - B,
        L + (W - L - R) / 2.0,
        H - 12.0,
        esc(xlabel),
        T + (H - T - B) / 2.0,
        T + (H - T - B) / 2.0,
        esc(ylabel),
        L - 6.0,
        H - B + 4.0,
        L - 6.0,
        T + 4.0,
        esc(ymax_label),
        H - B + 16.0,
        W - R,
        H - B + 16.0,
    );
}

fn px(x: f64) -> f64 {
    L + x.clamp(0.0, 1.0) * (W - L - R)
}
fn py(y: f64) -> f64 {
    H - B - y.clamp(0.0, 1.0) * (H - T - B)
}

/// A line through `points` (x, y both in [0, 1]).
pub(crate) fn line_chart(title: &str, xlabel: &str, ylabel: &str, points: &[(f64, f64)]) -> String {
    let mut out = String::new();
    frame(&mut out, title, xlabel, ylabel, "1");
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="steelblue" stroke-width="2" points="{}"/>"#,
        path.join(" ")
    );
    out.push_str("</svg>\n");
    out
}

/// Two overlaid histograms over [0, 1] in 20 bins, heights on a log scale
/// (legitimate senders outnumber spammers by far), with threshold marks.
pub(crate) fn histogram(
    title: &str,
    ham: &[f32],
    spam: &[f32],
    suspect_at: f32,
    spam_at: f32,
) -> String {
    const BINS: usize = 20;
    let bin = |v: &[f32]| {
        let mut b = [0usize; BINS];
        for x in v {
            let i = ((x.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
            b[i] += 1;
        }
        b
    };
    let (hb, sb) = (bin(ham), bin(spam));
    let max = hb
        .iter()
        .chain(sb.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let h = |n: usize| (n as f64).ln_1p() / max.ln_1p();
    let mut out = String::new();
    frame(
        &mut out,
        title,
        "score",
        "senders (log scale)",
        &format!("{max:.0}"),
    );
    let bw = (W - L - R) / BINS as f64;
    for i in 0..BINS {
        let x = L + i as f64 * bw;
        for (n, color, off) in [(hb[i], "seagreen", 0.0), (sb[i], "crimson", bw / 2.0)] {
            if n > 0 {
                let y = py(h(n));
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.8"><title>{n}</title></rect>"#,
                    x + off,
                    bw / 2.0 - 1.0,
                    H - B - y
                );
            }
        }
    }
    for (t, label) in [(suspect_at, "suspect"), (spam_at, "spam")] {
        let x = px(f64::from(t));
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{}" stroke="gray" stroke-dasharray="4 3"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="gray">{label}</text>"#,
            H - B,
            T - 4.0
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{}" y="{}" width="10" height="10" fill="seagreen"/><text x="{}" y="{}">legitimate</text><rect x="{}" y="{}" width="10" height="10" fill="crimson"/><text x="{}" y="{}">spam</text>"#,
        L + 10.0,
        T + 6.0,
        L + 24.0,
        T + 15.0,
        L + 110.0,
        T + 6.0,
        L + 124.0,
        T + 15.0
    );
    out.push_str("</svg>\n");
    out
}
