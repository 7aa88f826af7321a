--! Previous: sha1:204a42384032505ba2581a4c88abc049a82a77dc
--! Hash: sha1:d1a832f5006185c7b5bf80d3380f0f671edfdc97
--! Message: Message search: a generated tsvector and its GIN index

--------------------------------------------------------------------------------
-- Message search: a generated tsvector and its GIN index.
--
-- `search` is computed by PostgreSQL from `content` (English configuration:
-- stemming, stop words), stored, and so re-indexed by every edit with no
-- trigger of ours. Only the current content is indexed: earlier versions in
-- message_history are not searchable by anyone (a deliberate choice: an
-- edit that removes a word removes it from search for both participants,
-- while the history view still shows every version to both).
--
-- GET /search (src/queries/search.ts) matches `search @@
-- websearch_to_tsquery('english', q)` through messages_search_idx, scoped
-- to the caller's conversations by the same participant rule as every
-- other query, under row-level security.
--
-- Adding a stored generated column rewrites the table once (about 25 s per
-- million messages on the benchmark machine), under an exclusive lock.
--------------------------------------------------------------------------------

alter table app_public.messages
  add column if not exists search tsvector
  generated always as (to_tsvector('english'::regconfig, content)) stored;
comment on column app_public.messages.search is
  'Full-text vector of content (english), kept by PostgreSQL on insert and edit; GET /search matches it with websearch_to_tsquery.';

create index if not exists messages_search_idx on app_public.messages using gin (search);
comment on index app_public.messages_search_idx is
  'Serves GET /search: the messages whose content matches a tsquery.';
