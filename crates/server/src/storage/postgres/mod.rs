//! [`Storage`](super::Storage) on PostgreSQL (issue 15, in progress): several server instances on
//! one database. ADR 0018 records the driver and the tenant-isolation design.

pub mod cluster;

#[cfg(test)]
mod tests {
    use super::cluster::TestCluster;

    #[test]
    fn a_test_cluster_serves_on_loopback_with_passwords_only() {
        let cluster = TestCluster::start().unwrap();
        let mut client = postgres::Client::connect(&cluster.admin_url(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("{e}: {}", cluster.log()));
        let row = client.query_one("SELECT 1 + 1", &[]).unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
        client.batch_execute("CREATE DATABASE fresh").unwrap();
        assert!(postgres::Client::connect(&cluster.url("fresh"), postgres::NoTls).is_ok());

        let wrong = cluster.admin_url().replace("edgekeep:", "edgekeep:x");
        let Err(refused) = postgres::Client::connect(&wrong, postgres::NoTls) else {
            panic!("a wrong password was accepted");
        };
        assert_eq!(
            refused.code(),
            Some(&postgres::error::SqlState::INVALID_PASSWORD),
            "{refused:?}"
        );
    }
}
