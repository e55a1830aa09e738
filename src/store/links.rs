//! Which Discord member is which CAD account or unit (`member_links`),
//! as an admin (`/duty link`) or the member (`/link`) set it.

use super::{Store, StoreError, now_ms};

/// What a member is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// A CAD account id (`accId`).
    Account(String),
    /// A unit number (`unitNum`).
    UnitNum(String),
}

/// Who made a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSource {
    /// An admin, with `/duty link`.
    Admin,
    /// The member, with `/link` (through the API).
    SelfLinked,
}

impl LinkSource {
    fn as_str(self) -> &'static str {
        match self {
            LinkSource::Admin => "admin",
            LinkSource::SelfLinked => "self",
        }
    }
}

/// One stored link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLink {
    pub discord_id: u64,
    pub target: LinkTarget,
    pub source: LinkSource,
    pub linked_at: i64,
}

/// Links a member (replacing any link they had).
pub async fn set(
    store: &Store,
    discord_id: u64,
    target: LinkTarget,
    source: LinkSource,
    linked_by: Option<String>,
) -> Result<(), StoreError> {
    let (acc_id, unit_num) = match target {
        LinkTarget::Account(a) => (Some(a), None),
        LinkTarget::UnitNum(u) => (None, Some(u)),
    };
    store
        .writer()
        .execute(
            sqlx::query(
                "INSERT INTO member_links (discord_id, acc_id, unit_num, source, linked_by, linked_at)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (discord_id) DO UPDATE SET acc_id = excluded.acc_id,
                    unit_num = excluded.unit_num, source = excluded.source,
                    linked_by = excluded.linked_by, linked_at = excluded.linked_at",
            )
            .bind(discord_id as i64)
            .bind(acc_id)
            .bind(unit_num)
            .bind(source.as_str())
            .bind(linked_by)
            .bind(now_ms()),
        )
        .await
}

/// Removes a member's link; true when there was one.
pub async fn remove(store: &Store, discord_id: u64) -> Result<bool, StoreError> {
    let had = get(store, discord_id).await?.is_some();
    store
        .writer()
        .execute(sqlx::query("DELETE FROM member_links WHERE discord_id = ?").bind(discord_id as i64))
        .await?;
    Ok(had)
}

/// A member's link.
pub async fn get(store: &Store, discord_id: u64) -> Result<Option<MemberLink>, StoreError> {
    Ok(all_where(store, Some(discord_id)).await?.into_iter().next())
}

/// Every link, by member.
pub async fn all(store: &Store) -> Result<Vec<MemberLink>, StoreError> {
    all_where(store, None).await
}

type Row = (i64, Option<String>, Option<String>, String, i64);

async fn all_where(store: &Store, discord_id: Option<u64>) -> Result<Vec<MemberLink>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT discord_id, acc_id, unit_num, source, linked_at FROM member_links
         WHERE ? IS NULL OR discord_id = ? ORDER BY discord_id",
    )
    .bind(discord_id.map(|d| d as i64))
    .bind(discord_id.map(|d| d as i64))
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, acc, unit, source, at)| {
            let target = match (acc, unit) {
                (Some(a), _) => LinkTarget::Account(a),
                (None, Some(u)) => LinkTarget::UnitNum(u),
                (None, None) => return None,
            };
            let source = if source == "self" {
                LinkSource::SelfLinked
            } else {
                LinkSource::Admin
            };
            Some(MemberLink {
                discord_id: id as u64,
                target,
                source,
                linked_at: at,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_link_is_stored_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let member = 1_100_000_000_000_000_001;
        set(
            &store,
            member,
            LinkTarget::UnitNum("1-ADAM-12".into()),
            LinkSource::Admin,
            Some("admin".into()),
        )
        .await
        .unwrap();
        assert_eq!(
            get(&store, member).await.unwrap().unwrap().target,
            LinkTarget::UnitNum("1-ADAM-12".into())
        );
        set(
            &store,
            member,
            LinkTarget::Account("acc-9".into()),
            LinkSource::SelfLinked,
            None,
        )
        .await
        .unwrap();
        let link = get(&store, member).await.unwrap().unwrap();
        assert_eq!(
            (link.target, link.source),
            (LinkTarget::Account("acc-9".into()), LinkSource::SelfLinked)
        );
        assert_eq!(all(&store).await.unwrap().len(), 1);
        assert!(remove(&store, member).await.unwrap());
        assert!(!remove(&store, member).await.unwrap());
        assert_eq!(get(&store, member).await.unwrap(), None);
    }
}
