-- Decode gram codes (`vocab_cols`: gram_id, code, registered from numpy) into label
-- lists. Label t of a code is (code // $base^t) % $base, an index into $labels (the
-- symbols' tokens, then NULL for the null node); the first $p labels are the stem.
INSERT INTO pqgram_vocab
SELECT
    gram_id,
    list_transform(range($p), t -> $labels[((code // ($base::BIGINT ** t)::BIGINT) % $base) + 1]) AS stem,
    list_transform(range($p, $p + $q), t -> $labels[((code // ($base::BIGINT ** t)::BIGINT) % $base) + 1]) AS base
FROM vocab_cols
ORDER BY gram_id;
