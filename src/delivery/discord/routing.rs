//! Which channel each kind of event goes to: the environment's channels,
//! overridden at run time by `/route set` (stored, so it survives a restart).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::ids::ChannelId;
use crate::domain::route::RouteKind;
use crate::store::{Store, StoreError};

/// Settings key prefix of a stored route: `route.911`, `route.dispatch`, ...
const ROUTE_SETTING: &str = "route.";

/// The effective routing; cheap to clone, shared by the worker and the commands.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    channels: Arc<RwLock<HashMap<RouteKind, u64>>>,
}

impl Routing {
    /// The environment's routes with the stored overrides on top.
    pub async fn load(store: &Store, from_env: &HashMap<RouteKind, u64>) -> Result<Self, StoreError> {
        let mut channels = from_env.clone();
        for kind in RouteKind::ALL {
            if let Some(setting) = store.setting(&format!("{ROUTE_SETTING}{}", kind.name())).await?
                && let Ok(id) = setting.value.parse::<u64>()
            {
                channels.insert(kind, id);
            }
        }
        Ok(Self::fixed(channels))
    }

    pub fn fixed(channels: HashMap<RouteKind, u64>) -> Self {
        Self {
            channels: Arc::new(RwLock::new(channels)),
        }
    }

    /// The channel for a kind; panic alerts fall back to the units channel.
    pub fn channel(&self, kind: RouteKind) -> Option<ChannelId> {
        let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
        channels
            .get(&kind)
            .copied()
            .or_else(|| (kind == RouteKind::Panic).then(|| channels.get(&RouteKind::Units).copied())?)
            .map(ChannelId)
    }

    /// Every kind and its effective channel.
    pub fn all(&self) -> Vec<(RouteKind, Option<ChannelId>)> {
        RouteKind::ALL.into_iter().map(|k| (k, self.channel(k))).collect()
    }

    /// Routes a kind to a channel from now on, and stores it.
    pub async fn set(
        &self,
        store: &Store,
        kind: RouteKind,
        channel: u64,
        changed_by: &str,
    ) -> Result<(), StoreError> {
        store
            .set_setting(
                &format!("{ROUTE_SETTING}{}", kind.name()),
                &channel.to_string(),
                Some(changed_by),
            )
            .await?;
        self.channels
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind, channel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_falls_back_to_the_units_channel() {
        let routing = Routing::fixed(HashMap::from([(RouteKind::Units, 5)]));
        assert_eq!(routing.channel(RouteKind::Panic), Some(ChannelId(5)));
        assert_eq!(routing.channel(RouteKind::Emergency911), None);
        let routing = Routing::fixed(HashMap::from([(RouteKind::Units, 5), (RouteKind::Panic, 6)]));
        assert_eq!(routing.channel(RouteKind::Panic), Some(ChannelId(6)));
    }
}
