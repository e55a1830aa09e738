//! The live board as the fake Discord holds it: its requests, posts, edits
//! and text, and a wait for what it shows (tests/board.rs, tests/shift_day.rs).

use std::time::Duration;

use super::fake_discord::{FakeDiscord, RecordedMessage};

/// The board's channel in the tests (`DISCORD_CHANNEL_BOARD`).
pub const CH_BOARD: u64 = 108;

/// How long [`board_shows`] waits.
const WAIT: Duration = Duration::from_secs(20);

/// Every request to the board's channel.
pub fn board_requests(fake: &FakeDiscord) -> Vec<RecordedMessage> {
    fake.messages()
        .into_iter()
        .filter(|m| m.channel_id == CH_BOARD)
        .collect()
}

/// The board's messages posted (accepted by Discord).
pub fn board_posts(fake: &FakeDiscord) -> Vec<RecordedMessage> {
    board_requests(fake)
        .into_iter()
        .filter(|m| m.method == "POST" && m.is_success())
        .collect()
}

/// The board's edits.
pub fn board_edits(fake: &FakeDiscord) -> Vec<RecordedMessage> {
    board_requests(fake)
        .into_iter()
        .filter(|m| m.method == "PATCH")
        .collect()
}

/// The board as Discord shows it now: every embed's title and description
/// of every board message the fake still holds, top first.
pub fn board_text(fake: &FakeDiscord) -> String {
    let mut out = Vec::new();
    for post in board_posts(fake) {
        let Some(message) = fake.message(post.message_id) else {
            continue;
        };
        for embed in message["embeds"].as_array().cloned().unwrap_or_default() {
            out.push(embed["title"].as_str().unwrap_or_default().to_owned());
            out.push(embed["description"].as_str().unwrap_or_default().to_owned());
        }
    }
    out.join("\n")
}

/// Waits until the board shows every one of `shown` and none of `gone`;
/// returns its text.
pub async fn board_shows(fake: &FakeDiscord, shown: &[&str], gone: &[&str]) -> String {
    let text = tokio::time::timeout(WAIT, async {
        loop {
            let text = board_text(fake);
            if shown.iter().all(|s| text.contains(s)) && !gone.iter().any(|g| text.contains(g)) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    text.unwrap_or_else(|_| {
        panic!(
            "timed out waiting for the board to show {shown:?} and not {gone:?}; it shows:\n{}",
            board_text(fake)
        )
    })
}
