//! Mobile numbers, parsed once at the edge into E.164.

use std::fmt;

/// The region used for numbers written without a country code.
pub type Region = phonenumber::country::Id;

/// Parses a region code such as `CN` or `US`.
pub fn parse_region(code: &str) -> Option<Region> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// A valid mobile number in E.164 form, e.g. `+8615200000000`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

impl Mobile {
    /// Parses what a user typed; numbers without `+` are read in `region`.
    /// Returns `None` for anything that is not a valid phone number.
    pub fn parse(input: &str, region: Region) -> Option<Self> {
        let input = input.trim();
        // Bound the work on hostile input: no real number is this long.
        if input.is_empty() || input.len() > 40 {
            return None;
        }
        let number = phonenumber::parse(Some(region), input).ok()?;
        if !phonenumber::is_valid(&number) {
            return None;
        }
        Some(Mobile(number.format().mode(phonenumber::Mode::E164).to_string()))
    }

    /// Wraps a value that is already E.164 (read back from storage).
    pub fn from_stored(e164: String) -> Self {
        Mobile(e164)
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as a page shows it to the person it belongs to, without
    /// giving it away to anyone looking on: the national number with all
    /// but its first three and last four digits masked (`152****0000`).
    pub fn masked(&self) -> String {
        let national = phonenumber::parse(None, &self.0)
            .map(|n| n.national().value().to_string())
            .unwrap_or_else(|_| self.0.trim_start_matches('+').to_owned());
        let digits: Vec<char> = national.chars().collect();
        if digits.len() <= 7 {
            let shown = digits.len().saturating_sub(4);
            return format!("{}{}", "*".repeat(shown), digits[shown..].iter().collect::<String>());
        }
        let (head, tail) = (&digits[..3], &digits[digits.len() - 4..]);
        format!(
            "{}{}{}",
            head.iter().collect::<String>(),
            "*".repeat(digits.len() - 7),
            tail.iter().collect::<String>()
        )
    }
}

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_number_keeps_three_digits_and_the_last_four() {
        assert_eq!(Mobile::from_stored("+8615200000000".into()).masked(), "152****0000");
        assert_eq!(Mobile::from_stored("+14155550123".into()).masked(), "415***0123");
        assert_eq!(Mobile::from_stored("+8615200001234".into()).masked(), "152****1234");
    }

    fn cn() -> Region {
        parse_region("CN").expect("CN is a region")
    }

    #[test]
    fn spellings_of_one_number_are_one_mobile() {
        let a = Mobile::parse("15200000000", cn()).expect("valid");
        let b = Mobile::parse("+86 152 0000 0000", cn()).expect("valid");
        let c = Mobile::parse("+8615200000000", cn()).expect("valid");
        let d = Mobile::parse(" 152-0000-0000 ", cn()).expect("valid");
        assert_eq!(a.as_str(), "+8615200000000");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
    }

    #[test]
    fn other_regions_and_defaults() {
        let us = parse_region("us").expect("US is a region");
        assert_eq!(Mobile::parse("(201) 555-0123", us).map(|m| m.0), Some("+12015550123".into()));
        assert_eq!(Mobile::parse("+12015550123", cn()).map(|m| m.0), Some("+12015550123".into()));
        assert!(parse_region("XX").is_none());
    }

    #[test]
    fn non_numbers_are_rejected() {
        for bad in ["", "   ", "abc", "123", "1520000000000000000000", "😀😀😀", "+86 152", &"9".repeat(200)] {
            assert!(Mobile::parse(bad, cn()).is_none(), "{bad:?} parsed");
        }
    }
}
