-- schema.sql -- what `imgfeed-archiver --init-db` installs, and every archiver at start.
--
-- The archive is one table per exchange, site and type (design.md, "The
-- archive"), created on first sight by imgfeed_ensure_table().  This file adds
-- what makes the archive pleasant to query:
--
--   imgfeed_tables            every archive table, with its exchange and routing-key prefix
--   imgfeed_hamming(a, b)     bits that differ between two hashes as `_img` stores them
--   imgfeed_images(item)      an item's `_img` entries as rows, with their URLs
--   imgfeed_posted_at(item)   when the item was posted (the site's time, else when crawled)
--   imgfeed_find_image(k, v)  every image whose `_img` field k equals v, in all tables
--   imgfeed_ensure_table(…)   create an archive table with its indexes, once
--
-- and, on each archive table, the indexes the queries of docs/querying.md use: posts of a
-- board by time, and a GIN index that finds an image by sha1, md5 or any other
-- `_img` field.
--
-- Everything here can run again at any time: CREATE … IF NOT EXISTS and
-- CREATE OR REPLACE.  The archiver runs it in one transaction under an advisory
-- lock, so that archivers starting together do not trip over each other.

CREATE TABLE IF NOT EXISTS imgfeed_tables (
    name        text PRIMARY KEY,          -- the table, e.g. chan_4chan_post
    exchange    text NOT NULL,             -- e.g. chan
    key_prefix  text NOT NULL,             -- the routing key without its board, e.g. 4chan.post
    created_on  timestamptz NOT NULL DEFAULT now()
);

-- Hamming distance between two hashes in `_img`'s encoding (design.md:
-- standard base64 of the big-endian integer).  NULL when either is NULL or
-- their lengths differ (hashes of different sizes cannot be compared).
-- Not STRICT, like imgfeed_images: PostgreSQL inlines a SQL function into
-- the query only if it is not STRICT (or its body is strict itself, which a
-- CASE is not), and the near-duplicate search of docs/querying.md, which runs
-- both over every image, takes a seventh of the time inlined.  NULL in still
-- gives NULL out.
CREATE OR REPLACE FUNCTION imgfeed_hamming(a text, b text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN length(a) = length(b) THEN
        bit_count(('x' || encode(decode(a, 'base64'), 'hex'))::bit varying
                # ('x' || encode(decode(b, 'base64'), 'hex'))::bit varying)::integer
    END
$$;

-- The `_img` entries of an item as rows: n is the entry's index into `_urls`
-- and url that URL.  An entry for a failed download has only n, url and error.
-- Not STRICT, so that it can be inlined (see imgfeed_hamming); a NULL item
-- still gives no rows.
CREATE OR REPLACE FUNCTION imgfeed_images(item jsonb)
RETURNS TABLE (n integer, url text, size bigint, width integer, height integer, format text,
               crc32 text, md5 text, sha1 text, ahash text, dhash text, phash text, whash text,
               error text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT i.n, item->'_urls'->>i.n,
           CASE WHEN jsonb_typeof(e->'size') = 'number' THEN (e->>'size')::numeric::bigint END,
           CASE WHEN jsonb_typeof(e->'width') = 'number' THEN (e->>'width')::numeric::integer END,
           CASE WHEN jsonb_typeof(e->'height') = 'number' THEN (e->>'height')::numeric::integer END,
           e->>'format', e->>'crc32', e->>'md5', e->>'sha1',
           e->>'ahash', e->>'dhash', e->>'phash', e->>'whash', e->>'error'
    FROM jsonb_array_elements(CASE jsonb_typeof(item->'_img') WHEN 'array' THEN item->'_img'
                                                              ELSE '[]'::jsonb END) AS e,
         LATERAL (SELECT CASE WHEN e->'url' BETWEEN '0'::jsonb AND '2147483647'::jsonb
                              THEN (e->>'url')::numeric::integer END AS n) AS i
    WHERE jsonb_typeof(e) = 'object'
$$;

-- When the item was posted: 4chan's and vichan's "time", reddit's
-- "created_utc", else "_crawled_at" (UNIX seconds).  Values outside 1970-5138
-- are ignored rather than refused, so that no item fails to index.
-- Not STRICT, so that it is inlined (see imgfeed_hamming): into queries, and
-- into the board-and-time index's expression, which every row archived
-- evaluates; run as a SQL function instead, it started an executor per row,
-- a sixth of PostgreSQL's time archiving (bench/pipeline.sh).  NULL in still
-- gives NULL out.
CREATE OR REPLACE FUNCTION imgfeed_posted_at(item jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(CASE
        WHEN item->'time' BETWEEN '0'::jsonb AND '100000000000'::jsonb THEN (item->>'time')::float8
        WHEN item->'created_utc' BETWEEN '0'::jsonb AND '100000000000'::jsonb THEN (item->>'created_utc')::float8
        WHEN item->'_crawled_at' BETWEEN '0'::jsonb AND '100000000000'::jsonb THEN (item->>'_crawled_at')::float8
    END)
$$;

-- An identifier made from BASE and SUFFIX within PostgreSQL's 63 bytes: a
-- long BASE is cut and gains 8 hex digits of its md5, so names stay apart.
CREATE OR REPLACE FUNCTION imgfeed_object_name(base text, suffix text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length(base || suffix) <= 63 THEN base || suffix
                ELSE left(base, 63 - 9 - octet_length(suffix)) || '_' || left(md5(base), 8) || suffix END
$$;

-- Create the archive table NAME (and its indexes) unless it exists, and
-- register it.  Safe when several archivers create the same table at once:
-- they take turns on an advisory lock.
CREATE OR REPLACE FUNCTION imgfeed_ensure_table(name text, exchange text, key_prefix text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('imgfeed_ensure_table'), hashtext(name));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I (
                        id          text PRIMARY KEY,
                        archived_on timestamptz NOT NULL DEFAULT now(),
                        data        jsonb NOT NULL)', name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I ((data->>''_board''), imgfeed_posted_at(data))',
                   imgfeed_object_name(name, '_board_posted'), name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin ((data->''_img'') jsonb_path_ops)',
                   imgfeed_object_name(name, '_img'), name);
    INSERT INTO imgfeed_tables (name, exchange, key_prefix)
    VALUES (imgfeed_ensure_table.name, imgfeed_ensure_table.exchange, imgfeed_ensure_table.key_prefix)
    ON CONFLICT DO NOTHING;
END
$$;

-- Every image whose `_img` field KIND ('sha1', 'md5', 'crc32', 'phash', …)
-- equals VALUE, in every archive table, through each table's GIN index.
CREATE OR REPLACE FUNCTION imgfeed_find_image(kind text, value text)
RETURNS TABLE (table_name text, id text, url text, image jsonb, data jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT imgfeed_tables.name FROM imgfeed_tables ORDER BY 1 LOOP
        CONTINUE WHEN to_regclass(quote_ident(t)) IS NULL;
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, a.id, CASE WHEN jsonb_typeof(e->''url'') = ''number''
                                     THEN a.data->''_urls''->>(e->>''url'')::numeric::int END, e, a.data
               FROM %I AS a, jsonb_array_elements(a.data->''_img'') AS e
              WHERE a.data->''_img'' @> $1 AND e->>$2 = $3', t, t)
        USING jsonb_build_array(jsonb_build_object(kind, value)), kind, value;
    END LOOP;
END
$$;

-- Indexes for the tables of earlier versions.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM imgfeed_tables LOOP
        CONTINUE WHEN to_regclass(quote_ident(r.name)) IS NULL;
        PERFORM imgfeed_ensure_table(r.name, r.exchange, r.key_prefix);
    END LOOP;
END
$$;
