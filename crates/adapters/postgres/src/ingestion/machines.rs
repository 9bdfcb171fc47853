//! The machine registry in `ingestion.machines`.

use async_trait::async_trait;
use aurum_domain::{Machine, MachineId, MachineType, NewMachine, ProfileId, SiteId, TenantId};
use aurum_ports::ingestion::{MachineRegistry, RegisterError, RegisteredMachine};
use aurum_ports::{MachineKey, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::ingestion::{machines, profiles};
use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgMachineRegistry {
    pool: PgPool,
}

impl PgMachineRegistry {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = machines)]
struct Row {
    machine_key: i64,
    tenant_id: String,
    machine_id: String,
    machine_type: Option<String>,
    profile_id: String,
    site_id: Option<String>,
    name: Option<String>,
    registered_at: DateTime<Utc>,
}

impl Row {
    /// Rows were written from parsed values; a row that no longer parses means someone
    /// edited the table by hand, which is reported rather than trusted.
    fn into_domain(self) -> Result<RegisteredMachine, StoreError> {
        let bad = |what: &str, e: String| {
            StoreError::Refused(format!(
                "machine row {} has an invalid {what}: {e}",
                self.machine_key
            ))
        };
        let machine = Machine {
            tenant: TenantId::parse(&self.tenant_id).map_err(|e| bad("tenant", e.to_string()))?,
            id: MachineId::parse(&self.machine_id).map_err(|e| bad("id", e.to_string()))?,
            profile: ProfileId::parse(&self.profile_id)
                .map_err(|e| bad("profile", e.to_string()))?,
            machine_type: self
                .machine_type
                .as_deref()
                .map(str::parse::<MachineType>)
                .transpose()
                .map_err(|e| bad("type", e.to_string()))?,
            site: self
                .site_id
                .as_deref()
                .map(SiteId::parse)
                .transpose()
                .map_err(|e| bad("site", e.to_string()))?,
            name: self.name.clone(),
            registered_at: self.registered_at,
        };
        Ok(RegisteredMachine {
            key: MachineKey(self.machine_key),
            machine,
        })
    }
}

#[async_trait]
impl MachineRegistry for PgMachineRegistry {
    async fn register(&self, m: &NewMachine) -> Result<RegisteredMachine, RegisterError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let machine_type = m.machine_type();
        if machine_type.is_none() {
            // A tenant's own profile must exist. (Deleting a profile counts its machines in
            // its own transaction; a registration racing it is the rare case left.)
            let exists: bool = diesel::select(diesel::dsl::exists(
                profiles::table
                    .filter(profiles::tenant_id.eq(m.tenant.as_str()))
                    .filter(profiles::profile_id.eq(m.profile.as_str())),
            ))
            .get_result(&mut conn)
            .await
            .map_err(store_error)?;
            if !exists {
                return Err(RegisterError::UnknownProfile(m.profile.clone()));
            }
        }
        let row: Option<Row> = diesel::insert_into(machines::table)
            .values((
                machines::tenant_id.eq(m.tenant.as_str()),
                machines::machine_id.eq(m.id.as_str()),
                machines::machine_type.eq(machine_type.map(MachineType::as_str)),
                machines::profile_id.eq(m.profile.as_str()),
                machines::site_id.eq(m.site.as_ref().map(SiteId::as_str)),
                machines::name.eq(m.name.as_deref()),
            ))
            .on_conflict((machines::tenant_id, machines::machine_id))
            .do_nothing()
            .returning(Row::as_returning())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(store_error)?;
        match row {
            Some(row) => Ok(row.into_domain()?),
            None => Err(RegisterError::AlreadyExists(m.id.clone())),
        }
    }

    async fn find(
        &self,
        tenant: &TenantId,
        id: &MachineId,
    ) -> Result<Option<RegisteredMachine>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        machines::table
            .filter(machines::tenant_id.eq(tenant.as_str()))
            .filter(machines::machine_id.eq(id.as_str()))
            .select(Row::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error)?
            .map(Row::into_domain)
            .transpose()
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<Machine>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        machines::table
            .filter(machines::tenant_id.eq(tenant.as_str()))
            .order(machines::machine_id.asc())
            .select(Row::as_select())
            .load(&mut conn)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|r| r.into_domain().map(|m| m.machine))
            .collect()
    }
}
