-- The role is cluster-wide and other databases may use it: reverting leaves it in place.
SELECT 1;
