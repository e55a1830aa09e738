//! Typed ids where Discord's snowflakes meet the database, so a channel id
//! cannot be passed as a message id, and the one cast between Discord's
//! unsigned ids and SQLite's signed integers lives here.

use std::fmt;

macro_rules! snowflake {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            /// The id as Discord writes it.
            pub fn get(self) -> u64 {
                self.0
            }

            /// As stored in an SQLite INTEGER: the same 64 bits, signed.
            pub fn to_db(self) -> i64 {
                self.0 as i64
            }

            /// Back from an SQLite INTEGER written by [`Self::to_db`].
            pub fn from_db(value: i64) -> Self {
                Self(value as u64)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

snowflake!(
    /// A Discord channel.
    ChannelId
);
snowflake!(
    /// A Discord message.
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_beyond_i64_round_trip_through_the_database_form() {
        for id in [0, 1, 1_234_567_890_123_456_789, u64::MAX] {
            assert_eq!(ChannelId::from_db(ChannelId(id).to_db()), ChannelId(id));
            assert_eq!(MessageId::from_db(MessageId(id).to_db()).get(), id);
        }
        assert_eq!(ChannelId(42).to_string(), "42");
    }
}
