//! What the game server answers to a delivered event. The FiveM resource
//! always answers `200` and says in the body how its handler took the event;
//! nearly every answer is a normal outcome (see the wire-format notes, §3a):
//! `ok - custom` for types it has no handler for, `error` for every
//! UNIT_PANIC, `unknown unit` when its cache lacks the unit, ... None means
//! "send again". They are counted by answer and logged at debug; only a
//! streak of `error` on other types warns (it is also what the resource
//! answers to a wrong key).

/// The answers the resource is known to give (label values of
/// `cadbridge_relay_answers_total`); anything else counts as `other`.
pub const KNOWN_ANSWERS: &[&str] = &[
    "ok",
    "ok - custom",
    "error",
    "unknown unit",
    "invalid call or unit",
    "unknown call close",
    "unknown call note",
    "missing identIds",
    "missing identId",
    "missing data",
    "missing units",
    "missing ID",
    "invalid data",
    "missing communityUserId",
    "handler exception",
    "bad request",
];

/// `error` answers in a row (UNIT_PANIC aside) before a warning.
pub const ERROR_STREAK: u32 = 3;

/// The label an answer is counted under: a known answer as it is, the
/// resource's `{"error":"bad request"}` as `bad request`, else `other`.
pub fn label(answer: &str) -> &'static str {
    let answer = answer.trim();
    if answer == r#"{"error":"bad request"}"# {
        return "bad request";
    }
    KNOWN_ANSWERS
        .iter()
        .find(|known| **known == answer)
        .copied()
        .unwrap_or("other")
}

/// Follows `error` answers for one target: warns once per streak.
#[derive(Debug, Default)]
pub struct ErrorStreak {
    count: u32,
}

/// What a new answer means for the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreakChange {
    /// Nothing a person needs to hear about.
    None,
    /// The streak just reached [`ERROR_STREAK`]: warn (once).
    Started(u32),
    /// A warned streak ended after this many `error` answers.
    Ended(u32),
}

impl ErrorStreak {
    /// Notes the answer (by label) to an event of `event_type`.
    pub fn note(&mut self, event_type: &str, label: &str) -> StreakChange {
        if event_type == "EVENT_UNIT_PANIC" {
            // Always `error` (its handler returns nothing): neither counts nor breaks a streak.
            return StreakChange::None;
        }
        if label == "error" {
            self.count += 1;
            return if self.count == ERROR_STREAK {
                StreakChange::Started(self.count)
            } else {
                StreakChange::None
            };
        }
        let ended = std::mem::take(&mut self.count);
        if ended >= ERROR_STREAK {
            StreakChange::Ended(ended)
        } else {
            StreakChange::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_are_their_own_label_and_the_rest_is_other() {
        assert_eq!(label("ok"), "ok");
        assert_eq!(label("ok - custom\n"), "ok - custom");
        assert_eq!(label("unknown unit"), "unknown unit");
        assert_eq!(label(r#"{"error":"bad request"}"#), "bad request");
        assert_eq!(label("Success!"), "other");
        assert_eq!(label(&"x".repeat(300)), "other");
    }

    #[test]
    fn a_streak_of_errors_warns_once_and_panics_do_not_count() {
        let mut streak = ErrorStreak::default();
        for _ in 0..5 {
            assert_eq!(streak.note("EVENT_UNIT_PANIC", "error"), StreakChange::None);
        }
        assert_eq!(streak.note("EVENT_911", "error"), StreakChange::None);
        assert_eq!(streak.note("EVENT_911", "error"), StreakChange::None);
        assert_eq!(streak.note("EVENT_UNIT_PANIC", "error"), StreakChange::None);
        assert_eq!(streak.note("EVENT_911", "error"), StreakChange::Started(3));
        assert_eq!(
            streak.note("EVENT_911", "error"),
            StreakChange::None,
            "warned once per streak"
        );
        assert_eq!(streak.note("EVENT_911", "ok"), StreakChange::Ended(4));
        assert_eq!(streak.note("EVENT_911", "error"), StreakChange::None);
        assert_eq!(
            streak.note("EVENT_911", "unknown unit"),
            StreakChange::None,
            "a short streak ends quietly"
        );
    }
}
