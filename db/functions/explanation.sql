-- Attribute notation: `f.explanation` of a finding or of a score_history row reads as one jsonb
-- array, assembled from the three explanation parts it names (see explanation_assemble.sql).
CREATE OR REPLACE FUNCTION explanation(findings) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT explanation_assemble((SELECT body FROM explanation_parts WHERE id = $1.explanation_vuln),
                              (SELECT body FROM explanation_parts WHERE id = $1.explanation_asset),
                              (SELECT body FROM explanation_parts WHERE id = $1.explanation_context), $1.component, $1.score)
$$;

-- A history row has no component of its own: its finding's.
CREATE OR REPLACE FUNCTION explanation(score_history) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT explanation_assemble((SELECT body FROM explanation_parts WHERE id = $1.explanation_vuln),
                              (SELECT body FROM explanation_parts WHERE id = $1.explanation_asset),
                              (SELECT body FROM explanation_parts WHERE id = $1.explanation_context),
                              (SELECT component FROM findings WHERE id = $1.finding_id), $1.score)
$$;
