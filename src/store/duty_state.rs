//! What the duty workers must remember across restarts, as rows of
//! `settings`: the due time of the last weekly digest posted (so a digest
//! is never posted twice for one week, and one missed while cadbridge was
//! down is posted once at the next start).

use super::{Store, StoreError};

/// The settings key: the due time (unix ms) of the last digest posted.
pub const DIGEST_POSTED: &str = "duty_digest_posted";

/// The due time of the last digest posted (or recorded as the baseline).
pub async fn digest_posted(store: &Store) -> Result<Option<i64>, StoreError> {
    Ok(store
        .setting(DIGEST_POSTED)
        .await?
        .and_then(|s| s.value.parse().ok()))
}

/// Records `due` as posted; `why` says how (posted, baseline, skipped).
pub async fn set_digest_posted(store: &Store, due: i64, why: &str) -> Result<(), StoreError> {
    store
        .set_setting(DIGEST_POSTED, &due.to_string(), Some(why))
        .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_last_posted_digest_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        assert_eq!(digest_posted(&store).await.unwrap(), None);
        set_digest_posted(&store, 1_700_000_000_000, "posted")
            .await
            .unwrap();
        store.pool().close().await;
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        assert_eq!(digest_posted(&store).await.unwrap(), Some(1_700_000_000_000));
    }
}
