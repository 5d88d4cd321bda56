//! The treemap layout: squarified rectangles (Bruls, Huizing, van Wijk), one per value,
//! areas in proportion, filling the given rectangle without overlap.

/// A rectangle in SVG user units (y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    #[cfg(test)]
    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// The rectangle shrunk by `left`, `top`, `right`, `bottom` (never below zero size).
    pub fn inset(&self, left: f64, top: f64, right: f64, bottom: f64) -> Rect {
        Rect {
            x: self.x + left,
            y: self.y + top,
            w: (self.w - left - right).max(0.0),
            h: (self.h - top - bottom).max(0.0),
        }
    }
}

/// One rectangle per value, in the order given (largest first lays out squarest), areas
/// in proportion to the values, together filling `area`.
pub fn squarify(values: &[f64], area: Rect) -> Vec<Rect> {
    let total: f64 = values.iter().sum();
    let mut out = Vec::with_capacity(values.len());
    if values.is_empty() || total <= 0.0 {
        return out;
    }
    let scale = area.w * area.h / total;
    let areas: Vec<f64> = values.iter().map(|v| v * scale).collect();
    let mut free = area;
    let mut i = 0;
    while i < areas.len() {
        let side = free.w.min(free.h);
        let worst = |row: &[f64]| {
            let s: f64 = row.iter().sum();
            let (mx, mn) = row.iter().fold((0.0_f64, f64::MAX), |(a, b), &r| (a.max(r), b.min(r)));
            ((side * side * mx) / (s * s)).max((s * s) / (side * side * mn))
        };
        let mut j = i + 1;
        while j < areas.len() && worst(&areas[i..=j]) <= worst(&areas[i..j]) {
            j += 1;
        }
        let row = &areas[i..j];
        let s: f64 = row.iter().sum();
        if free.w >= free.h {
            let w = if free.h > 0.0 { (s / free.h).min(free.w) } else { 0.0 };
            let mut y = free.y;
            for a in row {
                let h = if w > 0.0 { a / w } else { 0.0 };
                out.push(Rect { x: free.x, y, w, h });
                y += h;
            }
            free = Rect { x: free.x + w, w: (free.w - w).max(0.0), ..free };
        } else {
            let h = if free.w > 0.0 { (s / free.w).min(free.h) } else { 0.0 };
            let mut x = free.x;
            for a in row {
                let w = if h > 0.0 { a / h } else { 0.0 };
                out.push(Rect { x, y: free.y, w, h });
                x += w;
            }
            free = Rect { y: free.y + h, h: (free.h - h).max(0.0), ..free };
        }
        i = j;
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The overlap of two rectangles' interiors.
    pub fn overlap(a: &Rect, b: &Rect) -> f64 {
        let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
        let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
        w.max(0.0) * h.max(0.0)
    }

    /// Checks that `rects` tile `area` in proportion to `values`, without overlap.
    pub fn assert_tiles(values: &[f64], rects: &[Rect], area: Rect) {
        assert_eq!(rects.len(), values.len());
        let total: f64 = values.iter().sum();
        for (v, r) in values.iter().zip(rects) {
            let want = v / total * area.area();
            assert!((r.area() - want).abs() <= 1e-6 * area.area(), "{r:?}: area {} for {want}", r.area());
            let eps = 1e-6;
            assert!(r.x >= area.x - eps && r.y >= area.y - eps, "{r:?} outside {area:?}");
            assert!(r.x + r.w <= area.x + area.w + eps && r.y + r.h <= area.y + area.h + eps, "{r:?} outside {area:?}");
        }
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                assert!(overlap(a, b) < 1e-6, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn squarify_tiles_the_area_in_proportion() {
        let area = Rect { x: 0.0, y: 0.0, w: 6.0, h: 4.0 };
        let values = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        assert_tiles(&values, &squarify(&values, area), area);
        // Bytes of a real layer: one huge block, a long tail of tiny ones.
        let area = Rect { x: 10.0, y: 50.0, w: 880.0, h: 760.0 };
        let values = [180e6, 40e6, 30e6, 9e5, 5e5, 4e5, 3.6e4, 700.0, 12.0, 1.0];
        let rects = squarify(&values, area);
        assert_tiles(&values, &rects, area);
        // The first (largest) comes out squarish, not a sliver.
        assert!(rects[0].w / rects[0].h < 3.0 && rects[0].h / rects[0].w < 3.0, "{:?}", rects[0]);
    }

    #[test]
    fn nothing_to_lay_out_gives_nothing() {
        let area = Rect { x: 0.0, y: 0.0, w: 6.0, h: 4.0 };
        assert!(squarify(&[], area).is_empty());
        assert!(squarify(&[0.0, 0.0], area).is_empty());
    }
}
