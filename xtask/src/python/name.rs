//! Distribution and extra names: PEP 503 normalisation, the one definition in the crate.

/// PEP 503: lower case, and every run of `-`, `_` and `.` becomes one `-`
/// (`Python__Dateutil.-x` is `python-dateutil-x`). Total: any text gives a key.
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Whether `c` may appear in a distribution name (PEP 508: letters, digits, `-`, `_`, `.`).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn runs_of_separators_become_one_dash_and_agree_with_pep508_rs() {
        let cases = [
            ("Python__Dateutil.-x", "python-dateutil-x"),
            ("Typing_Extensions", "typing-extensions"),
            ("zope.interface", "zope-interface"),
            ("A--B__C..D", "a-b-c-d"),
            ("six", "six"),
        ];
        for (name, want) in cases {
            assert_eq!(normalise(name), want, "{name}");
            assert_eq!(pep508_rs::PackageName::from_str(name).unwrap().to_string(), want, "{name}");
        }
        assert_eq!(normalise("  Six \n"), "six");
    }
}
