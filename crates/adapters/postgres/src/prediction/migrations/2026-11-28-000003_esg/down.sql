DROP TABLE IF EXISTS prediction.site_regions;
DROP TABLE IF EXISTS prediction.activity;
DROP TABLE IF EXISTS prediction.emission_factors;
DROP FUNCTION IF EXISTS prediction.emission_factors_append_only();
