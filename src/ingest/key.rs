//! The API key check.

use subtle::ConstantTimeEq;

/// Whether `sent` is the community key. Case-insensitive, as the official
/// listener upper-cases both sides, and constant-time in the key's contents
/// so the answer's timing does not reveal how much of a guess was right.
pub fn key_matches(sent: &str, expected: &str) -> bool {
    let sent = sent.to_ascii_uppercase();
    let expected = expected.to_ascii_uppercase();
    // A length mismatch is answered at once; the length of the key is not
    // the secret part.
    sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_match_whatever_their_case() {
        assert!(key_matches("TEST_API_KEY_7f3c9a12", "TEST_API_KEY_7f3c9a12"));
        assert!(key_matches("test_api_key_7F3C9A12", "TEST_API_KEY_7f3c9a12"));
    }

    #[test]
    fn different_or_differently_sized_keys_do_not() {
        assert!(!key_matches("TEST_API_KEY_7f3c9a1", "TEST_API_KEY_7f3c9a12"));
        assert!(!key_matches("TEST_API_KEY_7f3c9a123", "TEST_API_KEY_7f3c9a12"));
        assert!(!key_matches("", "TEST_API_KEY_7f3c9a12"));
        assert!(!key_matches("TEST_API_KEY_7f3c9a13", "TEST_API_KEY_7f3c9a12"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::key_matches;

    proptest! {
        /// The constant-time check agrees with a plain case-insensitive comparison.
        #[test]
        fn agrees_with_a_plain_case_insensitive_comparison(sent in "[ -~]{0,40}", expected in "[ -~]{1,40}") {
            prop_assert_eq!(key_matches(&sent, &expected), sent.eq_ignore_ascii_case(&expected));
        }

        #[test]
        fn any_case_of_the_key_matches(expected in "[A-Za-z0-9_]{1,40}", flips in proptest::collection::vec(any::<bool>(), 40)) {
            let sent: String = expected
                .chars()
                .zip(flips)
                .map(|(c, f)| if f { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() })
                .collect();
            prop_assert!(key_matches(&sent, &expected));
        }
    }
}
