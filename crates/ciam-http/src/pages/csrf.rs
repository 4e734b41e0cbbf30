//! Form tokens: every form a page draws carries a token derived from the
//! session it was drawn for, and a post is taken only with that token
//! (compared in constant time), so another site cannot make a signed-in
//! browser post a form.

use ciam_core::token::sha256_hex;
use subtle::ConstantTimeEq;

/// The form token of `session` for the pages of `purpose` (a token made
/// for one kind of page is not one for another).
pub(crate) fn token_for(purpose: &str, session: &str) -> String {
    sha256_hex(format!("ciam-{purpose}-csrf:{session}").as_bytes())
}

/// Whether a posted token is `expected`, in constant time.
pub(crate) fn matches(presented: &str, expected: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_session_and_purpose() {
        let token = token_for("console", "s1");
        assert!(matches(&token, &token_for("console", "s1")));
        assert!(!matches(&token, &token_for("console", "s2")));
        assert!(!matches(&token, &token_for("login", "s1")));
        assert!(!matches("", &token));
    }
}
