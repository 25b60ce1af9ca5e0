-- Schema 4: artifact ciphertexts in the database, so every instance serves every artifact.
-- A ciphertext is cut into chunks of 1 MiB (the last shorter); a range read fetches only the
-- chunks it spans. Ciphertext does not compress: stored out of line, uncompressed.
CREATE TABLE artifact_chunks (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    artifact_id TEXT NOT NULL,
    chunk INTEGER NOT NULL CHECK (chunk >= 0),
    bytes BYTEA NOT NULL,
    PRIMARY KEY (artifact_id, chunk)
);
ALTER TABLE artifact_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE artifact_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE artifact_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON artifact_chunks
    USING (org_id = current_setting('edgekeep.org_id', true))
    WITH CHECK (org_id = current_setting('edgekeep.org_id', true));
