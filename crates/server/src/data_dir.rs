//! The data folder: layout, `init`, and creating orgs (an operator action, not an API call).
//!
//! ```text
//! <data>/edgekeep.db        SQLite database (WAL)
//! <data>/server.key         server secret (0600)
//! <data>/desired-state.key  Ed25519 key that signs desired states (0600)
//! <data>/artifacts/<id>     artifact ciphertexts, named by their SHA-256
//! <data>/tls/ca.pem         development CA clients trust (generated at init)
//! <data>/tls/cert.pem       server certificate chain
//! <data>/tls/key.pem        server private key (0600)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgekeep_protocol::api::{Role, valid_name};
use ring::rand::{SecureRandom, SystemRandom};

use crate::artifact_store::ArtifactStore;
use crate::config::Database;
use crate::counters::Counters;
use crate::error::ServerError;
use crate::storage::{
    ApiKeyRecord, AuditEvent, InvitationRecord, MemberRecord, OrgRecord, PgStorage, SqliteStorage,
    Storage,
};
use edgekeep_protocol::token::{MintedToken, TokenKind};

/// What a server keeps, opened.
pub struct Records {
    /// The records.
    pub storage: Arc<dyn Storage>,
    /// Proof ids and rate budgets.
    pub counters: Counters,
    /// Artifact ciphertexts.
    pub artifacts: ArtifactStore,
}

/// Paths inside a data folder.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.root.join("edgekeep.db")
    }

    /// The server secret file.
    pub fn secret(&self) -> PathBuf {
        self.root.join("server.key")
    }

    /// The desired-state signing key.
    pub fn desired_state_key(&self) -> PathBuf {
        self.root.join("desired-state.key")
    }

    /// The folder of artifact ciphertexts.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// Loads the desired-state signing key, creating it (0600) if the folder predates it.
    pub fn load_or_create_desired_state_key(
        &self,
    ) -> Result<edgekeep_protocol::signing::SigningKey, ServerError> {
        use edgekeep_protocol::signing::SigningKey;
        let path = self.desired_state_key();
        if !path.exists() {
            let key =
                SigningKey::generate(&SystemRandom::new()).map_err(|_| ServerError::Random)?;
            write_private(&path, key.to_text().as_bytes())?;
        }
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(ServerError::io("reading the desired-state key"))?,
        );
        SigningKey::from_text(&text).map_err(|_| ServerError::BadSecret)
    }

    /// The development CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("tls").join("ca.pem")
    }

    /// The server certificate chain.
    pub fn cert(&self) -> PathBuf {
        self.root.join("tls").join("cert.pem")
    }

    /// The server private key.
    pub fn key(&self) -> PathBuf {
        self.root.join("tls").join("key.pem")
    }

    /// Loads the server secret.
    pub fn load_secret(&self) -> Result<crate::secret::ServerSecret, ServerError> {
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(self.secret()).map_err(|_| ServerError::BadSecret)?,
        );
        crate::secret::ServerSecret::from_bytes(&bytes)
    }

    /// Opens the records of an initialized folder: its SQLite file, or `database` when that
    /// names PostgreSQL (migrated first), with up to `connections` connections.
    pub fn open_database(
        &self,
        database: &Database,
        connections: usize,
    ) -> Result<Arc<dyn Storage>, ServerError> {
        Ok(self.open_records(database, connections)?.storage)
    }

    /// [`Self::open_database`], with what a server shares with the other instances of its
    /// database: counters and artifacts (in memory and in the folder for SQLite: one instance).
    pub fn open_records(
        &self,
        database: &Database,
        connections: usize,
    ) -> Result<Records, ServerError> {
        match database {
            Database::Embedded => Ok(Records {
                storage: Arc::new(self.open_storage(connections)?),
                counters: Counters::in_memory(),
                artifacts: ArtifactStore::open(self.artifacts(), None)?,
            }),
            Database::Postgres(url) => {
                let key = self.load_secret()?.audit_key();
                let connections = u32::try_from(connections).unwrap_or(u32::MAX);
                let storage = Arc::new(PgStorage::open(url, connections, key)?);
                Ok(Records {
                    storage: storage.clone(),
                    counters: Counters::Postgres(storage.clone()),
                    artifacts: ArtifactStore::open(self.artifacts(), Some(storage))?,
                })
            }
        }
    }

    /// Opens the database of an initialized folder, with the audit key from its secret.
    pub fn open_storage(&self, readers: usize) -> Result<SqliteStorage, ServerError> {
        if !self.database().exists() {
            return Err(ServerError::NotInitialized);
        }
        let key = self.load_secret()?.audit_key();
        Ok(SqliteStorage::open(&self.database(), readers, key)?)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(ServerError::io("creating a private file"))?;
    file.write_all(bytes)
        .map_err(ServerError::io("writing a private file"))
}

/// A newly created org and the one-time secret of its first Owner's API key.
pub struct OrgCreated {
    /// Org id.
    pub org_id: String,
    /// The first Owner's member id.
    pub owner_member_id: String,
    /// The Owner's API key id.
    pub owner_key_id: String,
    /// The Owner's API key secret (`ek_...`). Shown once; only its hash is stored.
    pub owner_api_key: String,
    /// A single-use invitation (`eki_...`, valid 7 days) with which the first Owner, a person,
    /// registers a passkey and becomes this Owner member. Shown once.
    pub owner_invitation: String,
}

impl std::fmt::Debug for OrgCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgCreated")
            .field("org_id", &self.org_id)
            .field("owner_member_id", &self.owner_member_id)
            .field("owner_key_id", &self.owner_key_id)
            .finish_non_exhaustive()
    }
}

fn random_id(rng: &SystemRandom, prefix: &str) -> Result<String, ServerError> {
    let mut bytes = [0u8; 12];
    rng.fill(&mut bytes).map_err(|_| ServerError::Random)?;
    Ok(format!(
        "{prefix}_{}",
        edgekeep_protocol::b64_encode(&bytes)
    ))
}

/// How long the first Owner's invitation stays valid.
const OWNER_INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;

/// Creates an org with an Owner member, that Owner's first API key and a single-use invitation
/// for the person who will be that Owner, audited as `system`.
pub fn create_org_in(storage: &dyn Storage, name: &str) -> Result<OrgCreated, ServerError> {
    if !valid_name(name) {
        return Err(ServerError::InvalidArgument(
            "org name must be 1 to 100 characters",
        ));
    }
    let rng = SystemRandom::new();
    let now = crate::now();
    let org = OrgRecord {
        id: random_id(&rng, "org")?,
        name: name.to_owned(),
        created_at: now,
    };
    let owner = MemberRecord {
        id: random_id(&rng, "mem")?,
        org_id: org.id.clone(),
        name: "owner".to_owned(),
        role: Role::Owner,
        created_at: now,
        user_id: None,
    };
    let secret = MintedToken::mint(TokenKind::ApiKey, &rng).map_err(|_| ServerError::Random)?;
    let key = ApiKeyRecord {
        id: random_id(&rng, "key")?,
        org_id: org.id.clone(),
        member_id: owner.id.clone(),
        name: "initial owner key".to_owned(),
        prefix: format!("{}{}", TokenKind::ApiKey.prefix(), secret.lookup()),
        hash: secret.hash(),
        scopes: Role::Owner.permissions().to_vec(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        replaced_by: None,
    };
    let request_id = random_id(&rng, "req")?;
    let event = |action: &str, target: String| AuditEvent {
        org_id: org.id.clone(),
        actor: "system".to_owned(),
        action: action.to_owned(),
        target,
        outcome: "ok".to_owned(),
        request_id: request_id.clone(),
        at: now,
    };
    let events = [
        event("org.create", format!("org:{}", org.id)),
        event("member.create.owner", format!("member:{}", owner.id)),
        event("api_key.create", format!("api_key:{}", key.id)),
    ];
    storage.create_org(&org, &owner, &key, &events)?;
    let invitation_token =
        MintedToken::mint(TokenKind::Invitation, &rng).map_err(|_| ServerError::Random)?;
    let invitation = InvitationRecord {
        id: random_id(&rng, "inv")?,
        org_id: org.id.clone(),
        token_hash: invitation_token.hash(),
        email: None,
        role: Role::Owner,
        member_id: Some(owner.id.clone()),
        created_by: "system".to_owned(),
        created_at: now,
        expires_at: now + OWNER_INVITATION_TTL_SECS,
        accepted_at: None,
        revoked_at: None,
    };
    storage.insert_invitation(
        &invitation,
        &event(
            "invitation.create.owner",
            format!("invitation:{}", invitation.id),
        ),
    )?;
    Ok(OrgCreated {
        org_id: org.id,
        owner_member_id: owner.id,
        owner_key_id: key.id,
        owner_api_key: secret.expose().to_owned(),
        owner_invitation: invitation_token.expose().to_owned(),
    })
}

/// Creates an org in an initialized data folder, in its records (`database`); safe while
/// servers run.
pub fn create_org(
    data_dir: &Path,
    database: &Database,
    name: &str,
) -> Result<OrgCreated, ServerError> {
    let storage = DataDir::new(data_dir).open_database(database, 1)?;
    create_org_in(&*storage, name)
}

/// Initializes a data folder with the embedded database: see [`init_with`].
pub fn init(data_dir: &Path, org_name: &str) -> Result<OrgCreated, ServerError> {
    init_with(data_dir, &Database::Embedded, org_name)
}

/// Initializes a data folder: creates it, a development CA and server certificate, the server
/// secret, the records (`database`: the folder's SQLite file or a PostgreSQL database, migrated)
/// and the first org with its Owner. Fails if the records already exist (a PostgreSQL database
/// that holds an org).
pub fn init_with(
    data_dir: &Path,
    database: &Database,
    org_name: &str,
) -> Result<OrgCreated, ServerError> {
    let dir = DataDir::new(data_dir);
    if *database == Database::Embedded && dir.database().exists() {
        return Err(ServerError::AlreadyInitialized);
    }
    if !valid_name(org_name) {
        return Err(ServerError::InvalidArgument(
            "org name must be 1 to 100 characters",
        ));
    }
    std::fs::create_dir_all(data_dir.join("tls"))
        .map_err(ServerError::io("creating the data folder"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(ServerError::io("restricting the data folder"))?;
    }
    if !dir.cert().exists() {
        let certs = crate::tls::generate_dev_certificates()?;
        std::fs::write(dir.ca_cert(), &certs.ca_pem)
            .map_err(ServerError::io("writing the CA certificate"))?;
        std::fs::write(dir.cert(), &certs.cert_pem)
            .map_err(ServerError::io("writing the certificate"))?;
        write_private(&dir.key(), certs.key_pem.as_bytes())?;
    }
    if !dir.secret().exists() {
        let secret = crate::secret::ServerSecret::generate_bytes()?;
        write_private(&dir.secret(), secret.as_ref())?;
    }
    dir.load_or_create_desired_state_key()?;
    let storage: Arc<dyn Storage> = match database {
        Database::Embedded => Arc::new(SqliteStorage::open(
            &dir.database(),
            1,
            dir.load_secret()?.audit_key(),
        )?),
        Database::Postgres(_) => dir.open_database(database, 1)?,
    };
    if !storage.org_ids()?.is_empty() {
        return Err(ServerError::AlreadyInitialized);
    }
    create_org_in(&*storage, org_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_everything_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let created = init(&root, "Acme").unwrap();
        assert!(created.owner_api_key.starts_with("ek_"));
        let dir = DataDir::new(&root);
        for path in [
            dir.database(),
            dir.secret(),
            dir.desired_state_key(),
            dir.ca_cert(),
            dir.cert(),
            dir.key(),
        ] {
            assert!(path.exists());
        }
        assert!(matches!(
            init(&root, "Again"),
            Err(ServerError::AlreadyInitialized)
        ));
        let second = create_org(&root, &Database::Embedded, "Other").unwrap();
        assert_ne!(second.org_id, created.org_id);
        assert!(!format!("{second:?}").contains(&second.owner_api_key));
    }
}
