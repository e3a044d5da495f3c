-- Score history has one name: score_history (a view over its archive part, score_changes, and each
-- finding's latest change, kept on the finding). exposure_events showed the same rows under other
-- column names; its readers now read score_history.
DROP VIEW IF EXISTS "exposure_events";
