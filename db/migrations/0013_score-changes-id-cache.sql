-- A first scoring of a million findings takes a million change ids, from two or more connections at
-- once: with one value per call every call locks the sequence's page, and the connections take turns
-- on it. Each connection now takes a thousand at a time. Ids still only grow within a connection;
-- across connections they follow time only roughly, which the event ranges of a full rescoring allow
-- (their lower end is found by time, their upper end is the highest id).
ALTER SEQUENCE "score_changes_id_seq" CACHE 1000;
