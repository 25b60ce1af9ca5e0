-- Schema 2: what the storage calls need beyond schema 1.
--
-- A person's own memberships and sessions span orgs: a transaction that names a person with
-- set_config('edgekeep.user_id', …, true) sees (and may change) that person's rows of `members`
-- and `sessions`, and the orgs they belong to, whatever org it names. Permissive policies add to
-- the tenant policy; with neither setting a transaction still sees nothing.
CREATE POLICY person ON members
    USING (user_id = current_setting('edgekeep.user_id', true));
CREATE POLICY person ON sessions
    USING (user_id = current_setting('edgekeep.user_id', true));
CREATE POLICY person ON orgs
    USING (id IN (
        SELECT org_id FROM members
        WHERE user_id = current_setting('edgekeep.user_id', true) AND removed_at IS NULL
    ));

-- Housekeeping (audit verification, purges, fleet snapshots) walks the orgs one by one: a
-- transaction that sets 'edgekeep.maintenance' may list them, and nothing else.
CREATE POLICY maintenance ON orgs FOR SELECT
    USING (current_setting('edgekeep.maintenance', true) = 'on');

-- Insertion order, where SQLite orders by rowid.
ALTER TABLE rollouts ADD COLUMN ordinal BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE scim_users ADD COLUMN ordinal BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE scim_groups ADD COLUMN ordinal BIGINT GENERATED ALWAYS AS IDENTITY;
