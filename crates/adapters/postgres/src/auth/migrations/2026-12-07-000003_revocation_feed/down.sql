DROP TABLE IF EXISTS auth.revocations;
