//! The treemap SVG `cargo xtask size` writes: the whole map is Lambda's 250 MiB budget;
//! in it the layer (its packages, each holding its largest folders), the layers it
//! requires (hatched grey, reserved) and the headroom (an empty block, "free"). Labels sit
//! in their block whole or not at all: a block too small for its label gets a number (when
//! that fits) and a line in the legend beside the map. Text is black or white, whichever
//! contrasts more with its fill. Same input, same bytes.

use super::colour::{self, Rgb};
use super::squarify::{squarify, Rect};
use super::PackageSize;
use crate::limits::UNZIPPED_LIMIT;
use crate::output::size;

const MARGIN: f64 = 8.0;
/// The map's own size; the legend adds to the width, a long legend to the height.
const MAP_W: f64 = 900.0;
const MAP_H: f64 = 720.0;
/// Room for the two title lines.
const TOP: f64 = 58.0;
const LEGEND_GAP: f64 = 18.0;
const LEGEND_LINE: f64 = 17.0;
const LEGEND_FONT: f64 = 12.0;
const LEGEND_HEAD: &str = "Too small to label (number in the map):";
/// A package's header band, above its folders.
const HEADER: f64 = 21.0;
const HEADER_FONT: f64 = 12.0;
/// How much wider bold glyphs are.
const BOLD_WIDER: f64 = 1.12;
const PAD: f64 = 4.0;

const RESERVED: Rgb = Rgb(0xd9, 0xd9, 0xd9);
const RESERVED_STRIPE: Rgb = Rgb(0xbd, 0xbd, 0xbd);
const FREE: Rgb = Rgb(0xfa, 0xfa, 0xfa);
const RED: Rgb = Rgb(0xc0, 0x00, 0x00);
/// Folder tints of their package's colour, alternating so neighbours differ.
const FOLDER_TINTS: [f64; 3] = [0.3, 0.5, 0.7];

/// What a block is, for its drawing and the `class` a reader (or a test) finds it by.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Package,
    Folder,
    Reserved,
    Free,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Package => "package",
            Kind::Folder => "folder",
            Kind::Reserved => "reserved",
            Kind::Free => "free",
        }
    }
}

/// Text placed in a block: its lines, their size and weight, where the first line sits.
#[derive(Debug, Clone)]
struct Label {
    lines: Vec<String>,
    font: f64,
    bold: bool,
    centred: bool,
    /// Turned a quarter anticlockwise, centred: a tall, narrow block.
    rotated: bool,
}

#[derive(Debug, Clone)]
struct Block {
    kind: Kind,
    /// The package, folder path or layer it stands for.
    name: String,
    bytes: u64,
    rect: Rect,
    fill: Rgb,
    tooltip: String,
    label: Option<Label>,
    /// Its number in the legend, when its label did not fit.
    legend: Option<usize>,
    /// The folders drawn inside a package.
    children: Vec<Block>,
}

struct LegendEntry {
    number: usize,
    fill: Rgb,
    hatched: bool,
    text: String,
}

/// The map before it is written out: blocks in drawing order and the legend.
struct Plan {
    blocks: Vec<Block>,
    legend: Vec<LegendEntry>,
    used: u64,
}

fn text_width(s: &str, font: f64, bold: bool) -> f64 {
    let em: f64 = s.chars().map(glyph_width).sum();
    em * font * if bold { BOLD_WIDER } else { 1.0 }
}

/// A glyph's advance in ems, rounded up from DejaVu Sans (Chromium's sans-serif on
/// Debian; Verdana and Arial are narrower), so a label that fits here fits there.
fn glyph_width(c: char) -> f64 {
    match c {
        'i' | 'l' | 'j' | 'I' | '!' | '|' | '\'' => 0.3,
        ' ' | '.' | ',' | ':' | ';' | '/' | '(' | ')' | '[' | ']' | 'f' | 't' | '-' => 0.4,
        'r' => 0.44,
        'm' | 'w' | 'M' | 'W' | '%' => 1.0,
        'A'..='Z' => 0.78,
        c if c.is_ascii() => 0.65,
        _ => 1.0,
    }
}

/// The first of: `name size` on one line, `name` over `size`, `name` broken after its
/// last `/` over `size`, at each font in turn, that fits inside `r` whole; then the same
/// turned a quarter (reading upwards) for a block taller than wide.
fn fit(r: &Rect, name: &str, amount: &str, fonts: &[f64], bold: bool, centred: bool) -> Option<Label> {
    let mut forms = vec![vec![format!("{name} {amount}")], vec![name.to_string(), amount.to_string()]];
    if let Some(at) = name.trim_end_matches('/').rfind('/') {
        forms.push(vec![name[..=at].to_string(), name[at + 1..].to_string(), amount.to_string()]);
    }
    let turned = Rect { w: r.h, h: r.w, ..*r };
    let boxes: &[(&Rect, bool)] = if r.h > r.w { &[(r, false), (&turned, true)] } else { &[(r, false)] };
    for &(area, rotated) in boxes {
        for &font in fonts {
            for lines in &forms {
                let wide = lines.iter().map(|l| text_width(l, font, bold)).fold(0.0, f64::max);
                let tall = lines.len() as f64 * font * 1.2 + 2.0;
                if wide + 2.0 * PAD <= area.w && tall + PAD <= area.h {
                    return Some(Label { lines: lines.clone(), font, bold, centred: centred || rotated, rotated });
                }
            }
        }
    }
    None
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Gives `b` a legend number when it has no label.
fn legend_if_unlabelled(b: &mut Block, legend: &mut Vec<LegendEntry>, hatched: bool) {
    if b.label.is_none() {
        let number = legend.len() + 1;
        b.legend = Some(number);
        legend.push(LegendEntry { number, fill: b.fill, hatched, text: format!("{} {}", b.name, size(b.bytes)) });
    }
}

/// A package's block: its header and folders when both fit, else one labelled block.
fn package_block(p: &PackageSize, rect: Rect, fill: Rgb, layer_bytes: u64, legend: &mut Vec<LegendEntry>) -> Block {
    let tooltip = format!(
        "{} {}: {}, {:.1}% of the layer, {:.1}% of 250 MiB",
        p.name,
        p.version,
        size(p.bytes),
        share(p.bytes, layer_bytes),
        share(p.bytes, UNZIPPED_LIMIT)
    );
    let mut b = Block {
        kind: Kind::Package,
        name: p.name.clone(),
        bytes: p.bytes,
        rect,
        fill,
        tooltip,
        label: None,
        legend: None,
        children: Vec::new(),
    };
    // `pandas` beside `pandas/core` is the files directly in pandas/.
    let is_parent = |path: &str| p.folders.iter().any(|f| f.path.starts_with(&format!("{path}/")));
    let mut parts: Vec<(String, u64)> = p
        .folders
        .iter()
        .filter(|f| f.bytes > 0)
        .map(|f| (if is_parent(&f.path) { format!("{}/ (top-level files)", f.path) } else { f.path.clone() }, f.bytes))
        .collect();
    let rest = p.bytes.saturating_sub(p.folders.iter().map(|f| f.bytes).sum());
    if rest > 0 {
        parts.push((format!("{} (smaller parts)", p.name), rest));
    }
    let header = Rect { h: HEADER.min(rect.h), ..rect };
    let header_label =
        fit(&header, &p.name, &size(p.bytes), &[HEADER_FONT], true, false).filter(|l| l.lines.len() == 1);
    let inner = rect.inset(2.0, HEADER, 2.0, 2.0);
    if parts.len() > 1 && header_label.is_some() && inner.w >= 24.0 && inner.h >= 16.0 {
        b.label = header_label;
        let values: Vec<f64> = parts.iter().map(|(_, v)| *v as f64).collect();
        for (j, ((path, bytes), r)) in parts.iter().zip(squarify(&values, inner)).enumerate() {
            let fill = fill.tint(FOLDER_TINTS[j % FOLDER_TINTS.len()]);
            let mut c = Block {
                kind: Kind::Folder,
                name: path.clone(),
                bytes: *bytes,
                rect: r,
                fill,
                tooltip: format!("{path}: {}, {:.1}% of {}", size(*bytes), share(*bytes, p.bytes), p.name),
                label: fit(&r, path, &size(*bytes), &[11.0, 9.0], false, false),
                legend: None,
                children: Vec::new(),
            };
            legend_if_unlabelled(&mut c, legend, false);
            b.children.push(c);
        }
    } else {
        b.label = fit(&rect, &p.name, &size(p.bytes), &[13.0, 11.0, 9.0], true, false);
        legend_if_unlabelled(&mut b, legend, false);
    }
    b
}

/// Lays out the map: the budget split between the layer, its required layers and what is
/// free, then the layer's packages and their folders.
fn plan(packages: &[PackageSize], required: &[(String, u64)]) -> Plan {
    let layer_bytes: u64 = packages.iter().map(|p| p.bytes).sum();
    let reserved: u64 = required.iter().map(|r| r.1).sum();
    let used = layer_bytes + reserved;
    let map = Rect { x: MARGIN, y: TOP, w: MAP_W, h: MAP_H };
    // Top level: the layer, each required layer, the headroom; largest first lays out squarest.
    let mut top: Vec<(Kind, usize, u64)> = vec![(Kind::Package, 0, layer_bytes)];
    top.extend(required.iter().enumerate().map(|(i, r)| (Kind::Reserved, i, r.1)));
    top.push((Kind::Free, 0, UNZIPPED_LIMIT.saturating_sub(used)));
    top.retain(|t| t.2 > 0);
    top.sort_by_key(|t| std::cmp::Reverse(t.2));
    let rects = squarify(&top.iter().map(|t| t.2 as f64).collect::<Vec<_>>(), map);

    let mut blocks = Vec::new();
    let mut legend = Vec::new();
    for (&(kind, i, bytes), rect) in top.iter().zip(rects) {
        match kind {
            Kind::Package => {
                let drawn: Vec<&PackageSize> = packages.iter().filter(|p| p.bytes > 0).collect();
                let names: Vec<&str> = drawn.iter().map(|p| p.name.as_str()).collect();
                let fills = colour::assign(&names);
                let values: Vec<f64> = drawn.iter().map(|p| p.bytes as f64).collect();
                for ((p, fill), r) in drawn.iter().zip(fills).zip(squarify(&values, rect)) {
                    blocks.push(package_block(p, r, fill, layer_bytes, &mut legend));
                }
            }
            Kind::Reserved => {
                let name = &required[i].0;
                let mut b = Block {
                    kind,
                    name: format!("{name} (required layer)"),
                    bytes,
                    rect,
                    fill: RESERVED,
                    tooltip: format!("{name}: a required layer, attached with this one: {} unzipped", size(bytes)),
                    label: fit(
                        &rect,
                        &format!("{name} (required layer)"),
                        &size(bytes),
                        &[13.0, 11.0, 9.0],
                        true,
                        true,
                    ),
                    legend: None,
                    children: Vec::new(),
                };
                legend_if_unlabelled(&mut b, &mut legend, true);
                blocks.push(b);
            }
            Kind::Free | Kind::Folder => {
                let name = "free:".to_string();
                let amount = format!("{} of 250 MiB", size(bytes));
                let mut b = Block {
                    kind: Kind::Free,
                    label: fit(&rect, &name, &amount, &[16.0, 13.0, 11.0, 9.0], true, true),
                    name: "free".into(),
                    bytes,
                    rect,
                    fill: FREE,
                    tooltip: format!("free: {amount}, for the function and its other layers"),
                    legend: None,
                    children: Vec::new(),
                };
                legend_if_unlabelled(&mut b, &mut legend, false);
                blocks.push(b);
            }
        }
    }
    // Packages of no bytes have no area: named in the legend.
    for p in packages.iter().filter(|p| p.bytes == 0) {
        let number = legend.len() + 1;
        legend.push(LegendEntry {
            number,
            fill: colour::WHITE,
            hatched: false,
            text: format!("{} {}", p.name, size(0)),
        });
    }
    Plan { blocks, legend, used }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One block as SVG: its group, rectangle, hover title, label or legend number, children.
fn draw(b: &Block, out: &mut String) {
    let r = &b.rect;
    let data = if b.kind == Kind::Folder { "data-path" } else { "data-name" };
    out.push_str(&format!(
        "<g class=\"{}\" {data}=\"{}\"><title>{}</title>\n",
        b.kind.class(),
        esc(&b.name),
        esc(&b.tooltip)
    ));
    let (stroke, extra) = match b.kind {
        Kind::Package => ("#ffffff", " stroke-width=\"2\""),
        Kind::Folder => ("#ffffff", " stroke-width=\"1\""),
        Kind::Reserved => ("#666666", " stroke-width=\"1.5\""),
        Kind::Free => ("#8c8c8c", " stroke-width=\"1.5\" stroke-dasharray=\"6 4\""),
    };
    out.push_str(&format!(
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"{stroke}\"{extra}/>\n",
        r.x,
        r.y,
        r.w,
        r.h,
        b.fill.hex()
    ));
    if b.kind == Kind::Reserved {
        out.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"url(#hatch)\"/>\n",
            r.x, r.y, r.w, r.h
        ));
    }
    for c in &b.children {
        draw(c, out);
    }
    let ink = colour::text_on(b.fill).hex();
    if let Some(l) = &b.label {
        let block = l.lines.len() as f64 * l.font * 1.2;
        let weight = if l.bold { " font-weight=\"bold\"" } else { "" };
        for (k, line) in l.lines.iter().enumerate() {
            // The baseline of line k: from the top of the text block, or centred on the block.
            let down = k as f64 * l.font * 1.2 + l.font * 0.95;
            let place = if l.rotated {
                format!(
                    "transform=\"translate({:.1} {:.1}) rotate(-90)\" text-anchor=\"middle\" x=\"0\" y=\"{:.1}\"",
                    r.x + r.w / 2.0,
                    r.y + r.h / 2.0,
                    down - block / 2.0
                )
            } else if l.centred {
                format!(
                    "x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\"",
                    r.x + r.w / 2.0,
                    r.y + (r.h - block) / 2.0 + down
                )
            } else {
                format!("x=\"{:.1}\" y=\"{:.1}\"", r.x + PAD, r.y + 2.0 + down)
            };
            out.push_str(&format!(
                "<text {place} font-size=\"{}\"{weight} fill=\"{ink}\">{}</text>\n",
                l.font,
                esc(line)
            ));
        }
    } else if let Some(n) = b.legend {
        let n = n.to_string();
        if text_width(&n, 9.0, false) + 4.0 <= r.w && r.h >= 12.0 {
            out.push_str(&format!(
                "<text class=\"marker\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"{ink}\">{n}</text>\n",
                r.x + r.w / 2.0,
                r.y + r.h / 2.0 + 3.0
            ));
        }
    }
    out.push_str("</g>\n");
}

/// The treemap of a layer titled `title` (its unit and size), its `packages` as the
/// build report lists them, and the layers it requires with their unzipped bytes.
pub fn svg(title: &str, packages: &[PackageSize], required: &[(String, u64)]) -> String {
    let plan = plan(packages, required);
    let over = plan.used > UNZIPPED_LIMIT;
    let mut head = title.to_string();
    if !required.is_empty() {
        let names: Vec<String> = required.iter().map(|(n, b)| format!("{n} {}", size(*b))).collect();
        head.push_str(&format!(" + required {} = {}", names.join(", "), size(plan.used)));
    }
    head.push_str(&format!(" of 250 MiB ({:.1}%)", share(plan.used, UNZIPPED_LIMIT)));
    let sub = if over {
        format!(
            "OVER BUDGET by {}: Lambda allows 250 MiB unzipped for a function and all its layers",
            size(plan.used - UNZIPPED_LIMIT)
        )
    } else {
        "The whole map is 250 MiB, Lambda's unzipped limit for a function and all its layers".to_string()
    };
    let legend_text_w = plan
        .legend
        .iter()
        .map(|e| text_width(&format!("{}  {}", e.number, e.text), LEGEND_FONT, false))
        .fold(0.0, f64::max);
    let legend_w = if plan.legend.is_empty() {
        0.0
    } else {
        LEGEND_GAP + (22.0 + legend_text_w).max(text_width(LEGEND_HEAD, LEGEND_FONT, true))
    };
    let width = (MARGIN + MAP_W + legend_w + MARGIN)
        .max(MARGIN * 2.0 + text_width(&head, 18.0, true))
        .max(MARGIN * 2.0 + text_width(&sub, 13.0, over))
        .ceil();
    let legend_h = (plan.legend.len() + 1) as f64 * LEGEND_LINE;
    let height = (TOP + MAP_H.max(legend_h) + MARGIN).ceil();
    let (head_ink, sub_ink, sub_weight) = if over {
        (RED.hex(), RED.hex(), " font-weight=\"bold\"")
    } else {
        ("#000000".to_string(), "#333333".to_string(), "")
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n\
         <defs><pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"8\" height=\"8\" patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"{}\" stroke-width=\"3\"/></pattern></defs>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
         <text class=\"title\" x=\"{MARGIN}\" y=\"24\" font-size=\"18\" font-weight=\"bold\" fill=\"{head_ink}\">{}</text>\n\
         <text class=\"subtitle\" x=\"{MARGIN}\" y=\"46\" font-size=\"13\"{sub_weight} fill=\"{sub_ink}\">{}</text>\n",
        RESERVED_STRIPE.hex(),
        esc(&head),
        esc(&sub)
    );
    for b in &plan.blocks {
        draw(b, &mut out);
    }
    // The layer's outline, over its packages.
    let layer: Vec<&Rect> = plan.blocks.iter().filter(|b| b.kind == Kind::Package).map(|b| &b.rect).collect();
    if !layer.is_empty() {
        let x0 = layer.iter().map(|r| r.x).fold(f64::MAX, f64::min);
        let y0 = layer.iter().map(|r| r.y).fold(f64::MAX, f64::min);
        let x1 = layer.iter().map(|r| r.x + r.w).fold(f64::MIN, f64::max);
        let y1 = layer.iter().map(|r| r.y + r.h).fold(f64::MIN, f64::max);
        out.push_str(&format!(
            "<rect class=\"layer\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#222222\" stroke-width=\"2\"/>\n",
            x1 - x0,
            y1 - y0
        ));
    }
    if !plan.legend.is_empty() {
        let x = MARGIN + MAP_W + LEGEND_GAP;
        out.push_str(&format!(
            "<g class=\"legend\"><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{LEGEND_FONT}\" font-weight=\"bold\" fill=\"#000000\">{LEGEND_HEAD}</text>\n",
            TOP + LEGEND_FONT
        ));
        for (k, e) in plan.legend.iter().enumerate() {
            let y = TOP + (k + 1) as f64 * LEGEND_LINE;
            let hatch = if e.hatched {
                format!("<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"12\" fill=\"url(#hatch)\"/>", y + 3.0)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "<g class=\"legend-entry\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"12\" fill=\"{}\" stroke=\"#666666\" stroke-width=\"0.5\"/>{hatch}<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{LEGEND_FONT}\" fill=\"#000000\">{}  {}</text></g>\n",
                y + 3.0,
                e.fill.hex(),
                x + 22.0,
                y + LEGEND_FONT + 1.0,
                e.number,
                esc(&e.text)
            ));
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::squarify::tests::{assert_tiles, overlap};
    use super::super::FolderSize;
    use super::*;

    const MIB: u64 = 1_048_576;

    fn package(name: &str, bytes: u64, folders: &[(&str, u64)]) -> PackageSize {
        PackageSize {
            name: name.into(),
            version: "1.0".into(),
            bytes,
            files: 1,
            layer_percent: 0.0,
            budget_percent: 0.0,
            license: None,
            slimmed_bytes: 0,
            sha256: None,
            folders: folders.iter().map(|(p, b)| FolderSize { path: p.to_string(), bytes: *b }).collect(),
        }
    }

    fn pandas_like() -> Vec<PackageSize> {
        vec![
            package(
                "pandas",
                29 * MIB,
                &[
                    ("pandas/_libs", 21 * MIB),
                    ("pandas/core", 5 * MIB),
                    ("pandas/io", 3 * MIB / 2),
                    ("pandas/tseries", 200_000),
                ],
            ),
            package("pytz", 935_000, &[("pytz/zoneinfo", 900_000), ("pytz-2025.2.dist-info", 35_000)]),
            package("tzdata", 515_000, &[("tzdata", 515_000)]),
            package("six", 36_000, &[("six.py", 34_000), ("six-1.17.0.dist-info", 2_000)]),
        ]
    }

    fn all<'a>(blocks: &'a [Block], out: &mut Vec<&'a Block>) {
        for b in blocks {
            out.push(b);
            all(&b.children, out);
        }
    }

    #[test]
    fn the_map_is_the_budget_split_in_proportion_without_overlap() {
        let packages = pandas_like();
        let required = vec![("numpy".to_string(), 48 * MIB)];
        let p = plan(&packages, &required);
        let map = Rect { x: MARGIN, y: TOP, w: MAP_W, h: MAP_H };
        let layer: u64 = packages.iter().map(|p| p.bytes).sum();
        // The layer's packages, the reserved layer and the free block tile the whole map.
        let values: Vec<f64> = p.blocks.iter().map(|b| b.bytes as f64).collect();
        let rects: Vec<Rect> = p.blocks.iter().map(|b| b.rect).collect();
        assert_tiles(&values, &rects, map);
        let free = p.blocks.iter().find(|b| b.kind == Kind::Free).unwrap();
        assert_eq!(free.bytes, UNZIPPED_LIMIT - layer - 48 * MIB);
        assert_eq!(p.blocks.iter().filter(|b| b.kind == Kind::Reserved).count(), 1);
        // Folders tile their package below its header, in proportion.
        let pandas = &p.blocks.iter().find(|b| b.name == "pandas").unwrap();
        assert_eq!(pandas.children.len(), 5, "four folders and the other files");
        let values: Vec<f64> = pandas.children.iter().map(|c| c.bytes as f64).collect();
        let rects: Vec<Rect> = pandas.children.iter().map(|c| c.rect).collect();
        assert_tiles(&values, &rects, pandas.rect.inset(2.0, HEADER, 2.0, 2.0));
        for c in &pandas.children {
            assert!(overlap(&c.rect, &pandas.rect) > 0.99 * c.rect.area());
        }
    }

    #[test]
    fn every_label_fits_its_block_and_reads_and_the_rest_are_in_the_legend() {
        let p = plan(&pandas_like(), &[("numpy".to_string(), 48 * MIB)]);
        let mut blocks = Vec::new();
        all(&p.blocks, &mut blocks);
        for b in &blocks {
            let ink = colour::text_on(b.fill);
            assert!(colour::contrast(ink, b.fill) >= 4.5, "{}: {} on {}", b.name, ink.hex(), b.fill.hex());
            match (&b.label, b.legend) {
                (Some(l), None) => {
                    let wide = l.lines.iter().map(|s| text_width(s, l.font, l.bold)).fold(0.0, f64::max);
                    let room = if l.rotated { b.rect.h } else { b.rect.w };
                    assert!(wide + 2.0 * PAD <= room, "{} overflows {:?}", b.name, b.rect);
                    assert!(l.lines.concat().contains(&b.name) || b.kind == Kind::Free, "{:?}", l.lines);
                    assert!(!l.lines.concat().contains('…'));
                }
                (None, Some(n)) => {
                    assert!(p.legend[n - 1].text.starts_with(&b.name), "{}", p.legend[n - 1].text)
                }
                other => panic!("{}: {other:?}", b.name),
            }
        }
        // six (36 KB of a 250 MiB map) cannot hold its name: the legend has it, with its size.
        assert!(
            p.legend.iter().any(|e| e.text == "six 35.2 KiB"),
            "{:?}",
            p.legend.iter().map(|e| &e.text).collect::<Vec<_>>()
        );
        let free = blocks.iter().find(|b| b.kind == Kind::Free).unwrap();
        assert_eq!(
            free.label.as_ref().unwrap().lines.concat().replace(' ', ""),
            format!("free:{}of250MiB", size(free.bytes)).replace(' ', "")
        );
    }

    #[test]
    fn svg_is_deterministic_and_says_when_over_budget() {
        let packages = pandas_like();
        let a = svg("pandas", &packages, &[("numpy".into(), 48 * MIB)]);
        assert_eq!(a, svg("pandas", &packages, &[("numpy".into(), 48 * MIB)]));
        assert!(a.contains("class=\"reserved\" data-name=\"numpy (required layer)\""));
        assert!(a.contains("class=\"free\"") && !a.contains("OVER BUDGET"));
        let over = svg("pandas", &packages, &[("huge".into(), 240 * MIB)]);
        assert!(!over.contains("class=\"free\""));
        assert!(over.contains(&format!("fill=\"{}\">OVER BUDGET by", RED.hex())), "{over}");
    }
}
