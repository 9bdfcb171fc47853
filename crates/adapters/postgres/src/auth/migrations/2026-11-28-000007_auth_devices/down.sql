DROP TABLE IF EXISTS auth.devices;
