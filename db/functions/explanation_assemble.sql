-- The factor list from its three parts, in the order the policy explains: feeds, CISA's SSVC and CVSS
-- (the vulnerability's part) around the exposure (the asset's), the decision, the modifiers that applied
-- (runtime evidence is looked up for the finding's component in the asset's part; validation evidence
-- follows the control), the business
-- impact where it shortened the due date, the tier, then the score and the terms that made it (a
-- decision part written before the terms were kept says the policy's template). A part that holds `factors` is a
-- whole explanation written before parts existed. prioritization/scoring/explanation.ts states the
-- same assembly in TypeScript; test/prioritization/scoring-equivalence.test.ts checks they agree.
CREATE OR REPLACE FUNCTION explanation_assemble(v jsonb, a jsonb, c jsonb, component text, score double precision) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN c IS NULL THEN NULL
    WHEN c ? 'factors' THEN c->'factors'
    ELSE jsonb_build_array(v->'kev')
      || CASE WHEN v ? 'expl' THEN jsonb_build_array(v->'expl') ELSE '[]'::jsonb END
      || jsonb_build_array(
        CASE WHEN c ? 'unexposedBy'
             THEN jsonb_build_object('factor', 'publicly_exposed', 'value', 'no',
                    'source', (a->'exposure'->>'source') || ' and ' || (c->'unexposedBy'->>'source'),
                    'effect', (a->'exposure'->>'effect') || '; but ' || (c->'unexposedBy'->>'effect'))
             ELSE a->'exposure' END,
        v->'auto', v->'ti', v->'epss', coalesce(c->'decision', v->'sev'))
      || CASE WHEN (c->>'likely')::boolean THEN jsonb_build_array(v->'likely') ELSE '[]'::jsonb END
      || CASE WHEN (c->>'poc')::boolean THEN jsonb_build_array(v->'poc') ELSE '[]'::jsonb END
      || CASE WHEN (c->>'runtime')::boolean THEN (
           SELECT jsonb_build_array(CASE WHEN s.seen IS NOT NULL
             THEN jsonb_build_object('factor', 'runtime', 'value', 'loaded', 'source', 'EDR runtime evidence', 'effect', 'runtime: ' || s.seen)
             ELSE jsonb_build_object('factor', 'runtime', 'value', 'not loaded', 'source', 'EDR runtime evidence',
                    'effect', format('runtime: EDR covers %s and never saw %s loaded: %s', a->>'runtimeHosts', component, c->>'runtimeEffect')) END)
           FROM (SELECT coalesce(a->'runtimeSeen'->>lower(component),
                                 CASE WHEN strpos(component, ':') > 0 THEN a->'runtimeSeen'->>lower(split_part(component, ':', 2)) END) AS seen) s)
         ELSE '[]'::jsonb END
      || CASE WHEN (c->>'nonprod')::boolean THEN jsonb_build_array(a->'environment') ELSE '[]'::jsonb END
      || CASE WHEN c ? 'control' THEN jsonb_build_array(c->'control') ELSE '[]'::jsonb END
      || CASE WHEN c ? 'validation' THEN jsonb_build_array(c->'validation') ELSE '[]'::jsonb END
      || CASE WHEN c ? 'vendor' THEN jsonb_build_array(c->'vendor') ELSE '[]'::jsonb END
      || CASE WHEN (c->>'critical')::boolean AND a ? 'business' THEN jsonb_build_array(a->'business') ELSE '[]'::jsonb END
      || jsonb_build_array(c->'tier', jsonb_build_object('factor', 'score', 'value', score, 'source', c->>'scoreSource',
           'effect', CASE WHEN c ? 'scoreText' THEN c->>'scoreText'
                          ELSE coalesce(nullif(concat_ws(' + ', nullif(v->>'scoreTerms', ''), nullif(c->>'scoreExposed', '')), ''), 'nothing adds up')
                               || coalesce(c->>'scoreFactor', '') END))
  END
$$;
