--! Previous: sha1:61a2e2d649de1a5de9bc78245750036f35eb1209
--! Hash: sha1:204a42384032505ba2581a4c88abc049a82a77dc
--! Message: The conversation page's plan, independent of the statistics

--------------------------------------------------------------------------------
-- The conversation page's plan, independent of the statistics.
--
-- The page asked for `user_low = a and user_high = b order by id desc`.
-- With those equalities the planner may serve the order from two indexes:
-- this one, or the primary key walked backwards while filtering. Which one
-- it took depended on how much of the table it believed the conversation
-- to be: with statistics taken when one conversation was most of the table
-- (stale, as after a burst of sends), it walked the primary key and read
-- 50,000 rows to find 51 (8 ms instead of 0.1 ms; worse as the table grows).
--
-- The page now asks for a range of this index's own key —
-- (user_low, user_high, id) between (a, b, 0) and (a, b, before) — in this
-- index's order (user_low, user_high, id descending). No other index can
-- produce that order or bound that range, so the plan is this index walked
-- backwards from the cursor, stopping after the page, whatever the
-- statistics say. A row comparison bounds an index range only when the
-- index's columns share one direction, hence ascending id here (a btree is
-- read backwards as cheaply as forwards).
--------------------------------------------------------------------------------

drop index if exists app_public.messages_conversation_idx;
create index messages_conversation_idx on app_public.messages (user_low, user_high, id);
comment on index app_public.messages_conversation_idx is
  'Messages between two users by id: the conversation page walks it backwards over the row range (user_low, user_high, id) < (a, b, cursor).';
