//! The profiles machines' readings are checked against: the built-in kinds, and each tenant's
//! own from the store, cached by this replica. Every replica polls the store's change log and
//! drops what it cached of a changed profile, so an edit made through any replica is in force
//! on all of them within the poll interval, without a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aurum_domain::{MachineType, Profile, ProfileHistory, ProfileId, TenantId};
use aurum_ports::ingestion::ProfileStore;
use aurum_ports::StoreError;
use chrono::{TimeDelta, Utc};

/// Cached tenant profiles at most; beyond it the cache starts over (they are re-read on use).
const MAX_CACHED_PROFILES: usize = 10_000;
/// Each poll also looks this far behind the previous one: a change's time is taken when its
/// transaction writes it, and the transaction may commit a little later.
const POLL_OVERLAP: TimeDelta = TimeDelta::seconds(10);

#[derive(Debug)]
pub struct ProfileCatalogue {
    store: Arc<dyn ProfileStore>,
    builtins: HashMap<ProfileId, Arc<ProfileHistory>>,
    cache: RwLock<HashMap<(TenantId, ProfileId), Arc<ProfileHistory>>>,
    /// Bumped whenever cached entries are dropped: a read that raced a change is not cached.
    generation: AtomicU64,
}

impl ProfileCatalogue {
    pub fn new(store: Arc<dyn ProfileStore>) -> Self {
        let builtins = MachineType::ALL
            .into_iter()
            .filter_map(|t| {
                let p = Profile::builtin(t);
                Some((p.id.clone(), Arc::new(ProfileHistory::new(vec![p])?)))
            })
            .collect();
        Self {
            store,
            builtins,
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &Arc<dyn ProfileStore> {
        &self.store
    }

    /// The built-in profile `id` names, if it names one.
    pub fn builtin(&self, id: &ProfileId) -> Option<&Profile> {
        self.builtins.get(id).map(|h| h.latest())
    }

    pub fn builtins(&self) -> impl Iterator<Item = &Profile> {
        MachineType::ALL
            .into_iter()
            .filter_map(|t| self.builtin(&ProfileId::of_type(t)))
    }

    /// Every version of the profile, built-in or the tenant's; `None` when there is none.
    pub async fn history(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<Arc<ProfileHistory>>, StoreError> {
        if let Some(h) = self.builtins.get(id) {
            return Ok(Some(Arc::clone(h)));
        }
        let key = (tenant.clone(), id.clone());
        if let Some(h) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(Some(h));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let Some(history) = self.store.history(tenant, id).await?.map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut c) = self.cache.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                if c.len() >= MAX_CACHED_PROFILES {
                    c.clear();
                }
                c.insert(key, Arc::clone(&history));
            }
        }
        Ok(Some(history))
    }

    /// Drops a profile this replica changed, at once rather than at the next poll.
    pub fn forget(&self, tenant: &TenantId, id: &ProfileId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut c) = self.cache.write() {
            c.remove(&(tenant.clone(), id.clone()));
        }
    }

    /// Drops what is cached of every profile changed at or after `since`.
    async fn drop_changed_since(&self, since: chrono::DateTime<Utc>) -> Result<(), StoreError> {
        for change in self.store.changed_since(since).await? {
            self.forget(&change.tenant, &change.id);
        }
        Ok(())
    }
}

/// Polls the change log every `interval` for as long as the service runs.
pub async fn watch_changes(catalogue: Arc<ProfileCatalogue>, interval: Duration) {
    let mut last = Utc::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = Utc::now();
        match catalogue.drop_changed_since(last - POLL_OVERLAP).await {
            Ok(()) => last = started,
            // Keep `last`: the next poll covers this one's span too.
            Err(e) => tracing::warn!(error = %e, "cannot read the profile change log"),
        }
    }
}
