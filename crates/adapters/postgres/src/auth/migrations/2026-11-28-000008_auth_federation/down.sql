DROP TABLE IF EXISTS auth.federation_pending;
DROP TRIGGER IF EXISTS users_anonymised_forget_federation ON auth.users;
DROP FUNCTION IF EXISTS auth.federated_identities_forget();
DROP TABLE IF EXISTS auth.federated_identities;
