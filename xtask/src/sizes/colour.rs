//! The treemap's colours: a fixed palette assigned by package name (the same package has
//! the same colour in every layer's map while the palette lasts, then hues rotate), tints
//! for the folders inside a package, and the text colour that reads on a fill (WCAG 2
//! relative luminance and contrast ratio).

/// A colour as sRGB bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

pub const BLACK: Rgb = Rgb(0, 0, 0);
pub const WHITE: Rgb = Rgb(255, 255, 255);

/// Fourteen colours that tell apart side by side (Tableau 10 and lighter partners), none
/// of them grey: grey means a required layer.
const PALETTE: [Rgb; 14] = [
    Rgb(0x4e, 0x79, 0xa7),
    Rgb(0xf2, 0x8e, 0x2b),
    Rgb(0x59, 0xa1, 0x4f),
    Rgb(0xe1, 0x57, 0x59),
    Rgb(0x76, 0xb7, 0xb2),
    Rgb(0xed, 0xc9, 0x48),
    Rgb(0xb0, 0x7a, 0xa1),
    Rgb(0xff, 0x9d, 0xa7),
    Rgb(0x9c, 0x75, 0x5f),
    Rgb(0xa0, 0xcb, 0xe8),
    Rgb(0x8c, 0xd1, 0x7d),
    Rgb(0xd3, 0x72, 0x95),
    Rgb(0xff, 0xbe, 0x7d),
    Rgb(0xd4, 0xa6, 0xc8),
];

impl Rgb {
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG 2 relative luminance, 0 (black) to 1 (white).
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = c as f64 / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// This colour mixed with white: `t` = 0 is itself, 1 is white.
    pub fn tint(self, t: f64) -> Rgb {
        let m = |c: u8| (c as f64 + (255.0 - c as f64) * t).round() as u8;
        Rgb(m(self.0), m(self.1), m(self.2))
    }
}

/// The WCAG 2 contrast ratio of two colours, 1 to 21.
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Black or white, whichever contrasts more with `fill` (at least 4.58 for any fill: AA
/// for normal text).
pub fn text_on(fill: Rgb) -> Rgb {
    if contrast(fill, BLACK) >= contrast(fill, WHITE) {
        BLACK
    } else {
        WHITE
    }
}

/// FNV-1a: a hash that is the same on every machine and every run.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// One colour per name, in order: the palette slot the name hashes to, or the next free
/// one; once the palette is used up, a hue from the name's hash (mid lightness).
pub fn assign(names: &[&str]) -> Vec<Rgb> {
    let mut used = [false; PALETTE.len()];
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let h = fnv1a(name);
        if i < PALETTE.len() {
            let mut slot = (h % PALETTE.len() as u64) as usize;
            while used[slot] {
                slot = (slot + 1) % PALETTE.len();
            }
            used[slot] = true;
            out.push(PALETTE[slot]);
        } else {
            // The golden angle from one name to the next keeps neighbours apart.
            let hue = ((h % 360) as f64 + (i - PALETTE.len()) as f64 * 137.508) % 360.0;
            out.push(hsl(hue, 0.55, 0.62));
        }
    }
    out
}

/// HSL (hue in degrees, saturation and lightness 0 to 1) to sRGB.
fn hsl(h: f64, s: f64, l: f64) -> Rgb {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f64| ((v + m) * 255.0).round() as u8;
    Rgb(byte(r), byte(g), byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luminance_and_contrast_follow_wcag() {
        assert_eq!(BLACK.luminance(), 0.0);
        assert!((WHITE.luminance() - 1.0).abs() < 1e-12);
        assert!((contrast(BLACK, WHITE) - 21.0).abs() < 1e-9);
        // #777777 on white is the textbook 4.48.
        assert!((contrast(Rgb(0x77, 0x77, 0x77), WHITE) - 4.48).abs() < 0.01);
    }

    #[test]
    fn text_reads_on_every_fill_and_pale_fills_get_dark_text() {
        for c in
            assign(&(0..40).map(|i| format!("p{i}")).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>())
        {
            for t in [0.0, 0.3, 0.45, 0.6, 0.9] {
                let fill = c.tint(t);
                assert!(contrast(fill, text_on(fill)) >= 4.5, "{} on {}", text_on(fill).hex(), fill.hex());
            }
        }
        assert_eq!(text_on(Rgb(0xed, 0xc9, 0x48)), BLACK, "yellow");
        assert_eq!(text_on(Rgb(0xa0, 0xcb, 0xe8)), BLACK, "pale blue");
        assert_eq!(text_on(Rgb(0x1f, 0x3a, 0x5f)), WHITE, "navy");
    }

    #[test]
    fn colours_are_distinct_within_the_palette_and_fixed_by_name() {
        let names: Vec<String> = (0..14).map(|i| format!("pkg{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut c: Vec<String> = assign(&names).iter().map(|c| c.hex()).collect();
        assert_eq!(assign(&names), assign(&names));
        c.sort();
        c.dedup();
        assert_eq!(c.len(), 14);
        // A name's slot does not depend on what comes after it.
        assert_eq!(assign(&["numpy"])[0], assign(&["numpy", "pandas"])[0]);
        let more = assign(&names.iter().copied().chain(["a", "b"]).collect::<Vec<_>>());
        assert_ne!(more[14], more[15]);
        assert!(!PALETTE.contains(&more[14]));
    }
}
