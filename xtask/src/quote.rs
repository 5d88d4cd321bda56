//! User input quoted in errors and warnings, cut to a readable length: a 10 MB
//! requirement line must not become a 10 MB error.

/// The most characters of user input an error or warning shows.
pub const MAX_QUOTED: usize = 200;

/// `s` as shown in a message: whole when short, else its first [`MAX_QUOTED`] characters
/// and `…` with the number of characters left out.
pub fn clip(s: &str) -> String {
    clip_to(s, MAX_QUOTED)
}

/// `s` cut to its first `max` characters, as [`clip`] does.
pub fn clip_to(s: &str, max: usize) -> String {
    // Control characters (a newline, a terminal escape) are shown escaped, so a message
    // quoting user input stays one line and cannot repaint the terminal.
    let escaped: String;
    let s = if s.chars().any(char::is_control) {
        escaped =
            s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect();
        escaped.as_str()
    } else {
        s
    };
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} more characters)", &s[..cut], s[cut..].chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(clip("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
    }

    #[test]
    fn short_input_is_whole_and_long_input_is_cut_on_a_char_boundary() {
        assert_eq!(clip("six==1.16.0"), "six==1.16.0");
        let exact = "x".repeat(MAX_QUOTED);
        assert_eq!(clip(&exact), exact);
        let long = "é".repeat(10_000);
        let c = clip(&long);
        assert!(c.starts_with(&"é".repeat(MAX_QUOTED)) && c.ends_with("… (9800 more characters)"), "{c}");
        assert!(c.chars().count() < MAX_QUOTED + 40);
    }
}
