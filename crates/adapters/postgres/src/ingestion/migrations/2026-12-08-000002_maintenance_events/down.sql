SET LOCAL ROLE aurumai_ingestion;
DROP TABLE ingestion.maintenance_events;
RESET ROLE;
