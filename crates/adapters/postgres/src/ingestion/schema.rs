//! Diesel table definitions for the tables queried through the DSL.

diesel::table! {
    ingestion.machines (machine_key) {
        machine_key -> BigInt,
        tenant_id -> Text,
        machine_id -> Text,
        machine_type -> Text,
        site_id -> Nullable<Text>,
        name -> Nullable<Text>,
        registered_at -> Timestamptz,
    }
}
